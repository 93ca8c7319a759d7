"""ECR (RecSys 2024): empathetic conversational recommendation — emotion-aware ranking and emotion-aligned responses."""
