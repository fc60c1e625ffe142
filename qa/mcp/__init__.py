"""The MCP server: the search service as tools for AI assistants."""
