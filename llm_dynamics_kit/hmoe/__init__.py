"""HMoE (arXiv 2408.10681): heterogeneous experts + P-Penalty on the kit's decoder; presets, analysis, benchmark."""
