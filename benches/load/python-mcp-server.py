"""The load runs' Python peer: a Python `mcp` 2.3.0 server with the same trivial tool
as the bare rmcp server (`test_simple_text`, a constant text block), over Streamable
HTTP on 127.0.0.1. No tenancy, no tokens, no rate limit. Started by python-mcp.sh."""
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("python-mcp-peer", log_level="WARNING")


@server.tool()
def test_simple_text() -> str:
    """Returns a constant text block."""
    return "This is a simple text response for testing."


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    server.run("streamable-http", host="127.0.0.1", port=port)
