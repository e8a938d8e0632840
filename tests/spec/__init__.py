"""Spec files: validation with file:line, hostile input, the JSON schema against validate."""
