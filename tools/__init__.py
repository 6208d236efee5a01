"""MCP tool adapters: thin, one module per group."""
