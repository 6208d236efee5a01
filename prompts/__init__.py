"""MCP prompts."""
