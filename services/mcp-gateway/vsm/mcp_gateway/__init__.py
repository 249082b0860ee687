"""vsm mcp-gateway (gateway): MCP server and REST API for LLM clients and scripts."""
