"""MCP composition root: settings, lifespan, resources, watcher, transports and the command line."""
