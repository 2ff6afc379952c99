"""Study orchestration: the config, the grid of jobs, executors (local, Ray), one folder layout."""
