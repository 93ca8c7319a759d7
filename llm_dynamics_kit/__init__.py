"""llm_dynamics_kit: one LM substrate (model, corpus, trainer) and three papers on how LMs train."""
