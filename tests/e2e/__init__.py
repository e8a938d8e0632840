"""End to end: the controller, the demo and the container entrypoint as processes, against moto's server."""
