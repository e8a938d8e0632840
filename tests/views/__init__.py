"""What people read: explain, the routing view, the plan as a PR comment."""
