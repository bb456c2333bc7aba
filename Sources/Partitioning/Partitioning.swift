// Hybrid optimal block partitioning arrives with issue 2.
