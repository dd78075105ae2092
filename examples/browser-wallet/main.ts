/**
 * `deno task example:wallet`: serves the example wallet page (server.ts) for the quick start's
 * running gateway and service and an Ethereum JSON-RPC node (anvil).
 *
 * ```sh
 * deno task example:wallet [--port 5173] [--service-url http://127.0.0.1:50052]
 *   [--gateway-url http://127.0.0.1:8080] [--rpc-url http://127.0.0.1:8545] [--account alice]
 * ```
 *
 * The caller token comes from `WALLET_MPC_CLIENT_TOKEN` (the quick start exports it) or
 * `--token`. The gateway and the service must allow the page's origin (CORS): start them with
 * `--cors-origins http://127.0.0.1:5173` and `WALLET_MPC_SERVICE__SERVER__CORS_ORIGINS=...`.
 * Prints the page's URL, then one JSON line `{"msg":"listening","url":...,"port":...}`.
 * @module
 */
import process from "node:process";
import { formatHelp, parseCommandLine } from "../../platform/cli_args.ts";
import { startWalletServer } from "./server.ts";

const SPEC = {
  flags: {
    port: { arg: "n", help: "the page's port (5173; 0 picks a free one)" },
    "service-url": { arg: "url", help: "the sign-service's gRPC-web URL (http://127.0.0.1:50052)" },
    "gateway-url": { arg: "url", help: "the sign-gateway (http://127.0.0.1:8080)" },
    "rpc-url": { arg: "url", help: "the Ethereum JSON-RPC node (http://127.0.0.1:8545)" },
    token: { arg: "token", help: "the caller's token (WALLET_MPC_CLIENT_TOKEN)" },
    account: { arg: "id", help: "the account the page shows first (alice)" },
  },
  maxPositionals: 0,
} as const;

const USAGE = formatHelp({
  title: "wallet-mpc example wallet page",
  usage: ["deno task example:wallet [options]"],
  commands: [],
  flags: SPEC.flags,
  notes: ["The gateway and the service must allow the page's origin (README, quick start)."],
});

async function main(): Promise<number> {
  const args = parseCommandLine(process.argv.slice(2), SPEC, USAGE, console);
  if (typeof args === "number") return args;
  const port = Number(args.value("port") ?? "5173");
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port: expected 0..65535, got ${args.value("port")}`);
    return 2;
  }
  const config = {
    serviceUrl: args.value("service-url") ?? "http://127.0.0.1:50052",
    gatewayUrl: args.value("gateway-url") ?? "http://127.0.0.1:8080",
    rpcUrl: args.value("rpc-url") ?? "http://127.0.0.1:8545",
    token: args.value("token") ?? process.env.WALLET_MPC_CLIENT_TOKEN ?? "",
    account: args.value("account") ?? "alice",
  };
  const server = await startWalletServer({ port, sources: true, config: () => config });
  console.error(`example wallet: ${server.url}/`);
  console.log(JSON.stringify({ msg: "listening", url: server.url, port: server.port }));
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await server.close();
  return 0;
}

process.exit(await main());
