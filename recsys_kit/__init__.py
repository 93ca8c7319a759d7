"""recsys_kit: recommender-system papers as RecBole citizens (models, samplers, data builders)."""
