"""The MCP server at `/mcp`: its tools (one module per part of the system), their argument
types and results, and the endpoint's own limits."""
