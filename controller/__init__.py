"""Pointsman: GitOps controller for versioned serverless APIs on AWS."""

__version__ = "0.1.0"
