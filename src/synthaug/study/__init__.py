"""Study statistics: summaries, Friedman/Nemenyi with CD diagrams, Wilcoxon vs real-only."""
