"""MCP server: the memory tools over stdio (manage.py mcp) and streamable HTTP (/mcp)."""
