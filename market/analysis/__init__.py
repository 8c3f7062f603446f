"""Analysis of finished experiments: comparisons, figures."""
