"""aoai-batch-mcp core: models, validation, builder, client, registry, results and the emulator (no MCP)."""
