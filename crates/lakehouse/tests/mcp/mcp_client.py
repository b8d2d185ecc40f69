"""The MCP tools through the official MCP Python SDK (`mcp` on PyPI), as an assistant would use them.

Run by the Rust integration test `mcp.rs`, which starts a server with keys and staffing data, then:

    python mcp_client.py

with LAKEHOUSE_BIN (the lakehouse binary), LAKEHOUSE_URL (the gateway), LAKEHOUSE_RECRUITER_KEY and
LAKEHOUSE_CLIENT_KEY in the environment. One client launches `lakehouse mcp` over stdio, another speaks
streamable HTTP to /v1/mcp; each lists the tools, checks their schemas and calls every tool with real data,
error paths included. Exits non-zero (with the failed assertion) when anything is wrong.
"""

import asyncio
import json
import os
import sys
import urllib.error
import urllib.request

from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

BIN = os.environ["LAKEHOUSE_BIN"]
URL = os.environ["LAKEHOUSE_URL"]
RECRUITER = os.environ["LAKEHOUSE_RECRUITER_KEY"]
CLIENT = os.environ["LAKEHOUSE_CLIENT_KEY"]

TOOLS = {"list_datasets", "get_manifest", "query_sql", "embed_text", "search_vectors", "matrix_search", "list_corpora"}
calls = 0


def text(result):
    return "".join(block.text for block in result.content if getattr(block, "type", "") == "text")


async def call(client, name, arguments, *, error=None):
    """Calls a tool; with `error`, expects a tool error whose text starts with that API code."""
    global calls
    calls += 1
    result = await client.call_tool(name, arguments)
    body = text(result)
    if error is None:
        assert not result.is_error, f"{name} {arguments}: {body}"
    else:
        assert result.is_error, f"{name} {arguments} should fail with {error}: {body}"
        assert body.startswith(error + ":"), f"{name}: expected {error}, got {body}"
    return body


async def protocol_error(client, name, arguments):
    """A malformed call is the protocol's error, not a tool result, and leaves the server working."""
    global calls
    calls += 1
    try:
        result = await client.call_tool(name, arguments)
    except MCPError as err:
        assert "argument" in str(err) or "tool" in str(err), str(err)
    else:
        raise AssertionError(f"{name} {arguments} answered instead of a protocol error: {text(result)}")


async def schemas(client):
    listed = await client.list_tools()
    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == TOOLS, sorted(tools)
    for tool in tools.values():
        assert tool.input_schema.get("type") == "object", tool.name
        assert len(tool.description or "") > 60, tool.name
    assert tools["query_sql"].input_schema.get("required") == ["sql"]
    sql = tools["query_sql"].description
    assert "read-only" in sql and "workers" in sql and "job_orders" in sql, sql
    assert "order_id" in tools["matrix_search"].input_schema["properties"]
    assert tools["get_manifest"].input_schema.get("required") == ["name"]
    return tools


async def every_tool(client, role):
    """Every tool with real data, then the error paths."""
    await schemas(client)
    datasets = await call(client, "list_datasets", {})
    assert datasets.splitlines()[0] == "name\tversion\trows\tbytes\tupdated_at", datasets
    assert "\nworkers\t0\t150\t" in datasets, datasets
    manifest = json.loads(await call(client, "get_manifest", {"name": "workers"}))
    columns = [c["column"] for c in manifest["schema"]]
    assert "worker_id" in columns and manifest["rows"] == 150, manifest
    counted = await call(client, "query_sql", {"sql": "SELECT count(*) AS n FROM workers"})
    assert counted.splitlines()[:2] == ["n (int64)", "150"], counted
    assert "truncated" not in counted
    capped = await call(client, "query_sql", {"sql": "SELECT worker_id, state FROM workers ORDER BY worker_id", "max_rows": 20})
    assert "(20 rows; truncated at 20 rows" in capped, capped
    everything = await call(client, "query_sql", {"sql": "SELECT * FROM workers"})
    assert len(everything.encode()) < 66 * 1024 and "truncated at 65536 bytes" in everything, everything[-300:]
    vectors = json.loads(await call(client, "embed_text", {"texts": ["forklift operator", "welder"]}))
    assert vectors["dim"] == 384 and len(vectors["vectors"]) == 2
    hits = json.loads(await call(client, "search_vectors", {"index": "matrix-workers", "text": "welder", "k": 3}))
    assert len(hits["hits"]) == 3, hits
    found = await call(client, "matrix_search", {"query": "forklift operator", "k": 5, "filters": {"state": "TX"}})
    header = found.splitlines()[0].split("\t")
    assert header[:4] == ["corpus", "id", "score", "eligible"] and header[-1] == "reasons", header
    assert len(found.splitlines()) == 7 and "workers@v0" in found, found
    order = await call(client, "matrix_search", {"order_id": "JO-00001", "k": 3, "include_ineligible": True})
    assert "excluded" in order, order
    corpora = await call(client, "list_corpora", {})
    assert "\nworkers\tworkers\t0\tready\t150\t" in corpora, corpora

    # Errors an assistant can act on: the API's code and message, as a tool error.
    await call(client, "query_sql", {"sql": "SELEC nonsense"}, error="bad_request")
    await call(client, "query_sql", {"sql": "DROP TABLE workers"}, error="read_only")
    await call(client, "get_manifest", {"name": "nobody"}, error="dataset_not_found")
    await call(client, "matrix_search", {"query": "x", "corpora": ["nobody"]}, error="not_found")
    await call(client, "matrix_search", {"query": "", "k": 3}, error="bad_request")
    await call(client, "search_vectors", {"index": "nothing", "text": "x"}, error="index_not_found")
    # Malformed calls: the protocol's error; the server keeps answering.
    await protocol_error(client, "query_sql", {"sqll": "SELECT 1"})
    await protocol_error(client, "matrix_search", {"k": "ten"})
    await protocol_error(client, "no_such_tool", {})
    await schemas(client)


async def client_role(client):
    """A client key: the corpus it may not search is refused, and no hidden field comes back by any tool."""
    await call(client, "matrix_search", {"query": "welder", "corpora": ["job_orders"]}, error="forbidden")
    found = await call(client, "matrix_search", {"query": "forklift operator", "k": 10, "include_ineligible": True})
    header = found.splitlines()[0].split("\t")
    for hidden in ["email", "phone", "last_name", "pay_rate_min"]:
        assert hidden not in header, header
    assert "@example." not in found, found
    await call(client, "query_sql", {"sql": "SELECT email FROM workers"}, error="forbidden")
    corpora = await call(client, "list_corpora", {})
    names = [line.split("\t")[0] for line in corpora.splitlines()[1:]]
    assert names == ["workers"], corpora


def http(key):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return Client(streamable_http_client(f"{URL}/v1/mcp", http_client=create_mcp_http_client(headers=headers)))


async def main():
    stdio = StdioServerParameters(command=BIN, args=["mcp", "--gateway", URL, "--api-key", RECRUITER])
    async with Client(stdio) as client:
        await every_tool(client, "recruiter")
    stdio_client = StdioServerParameters(command=BIN, args=["mcp", "--gateway", URL, "--api-key", CLIENT])
    async with Client(stdio_client) as client:
        await client_role(client)

    async with http(RECRUITER) as client:
        await every_tool(client, "recruiter")
    async with http(CLIENT) as client:
        await client_role(client)
    # Without a key the gateway refuses the connection itself: the SDK cannot connect, and the answer is the
    # API's 401 with its error body.
    try:
        async with http(None) as client:
            await client.list_tools()
    except Exception:  # the SDK reports the refusal as an error (wrapped in an exception group)
        pass
    else:
        raise AssertionError("/v1/mcp answered without a key")
    request = urllib.request.Request(f"{URL}/v1/mcp", data=b"{}", method="POST",
                                     headers={"content-type": "application/json"})
    try:
        urllib.request.urlopen(request)
    except urllib.error.HTTPError as err:
        assert err.code == 401, err.code
        assert json.loads(err.read())["error"]["code"] == "missing_api_key"
    else:
        raise AssertionError("/v1/mcp answered without a key")
    print(f"ok: {calls} tool calls over stdio and streamable HTTP")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError as err:
        print(f"FAILED: {err}", file=sys.stderr)
        raise
