"""vsm control (S3): resource budgets and allocation, S3* audits."""
