/**
 * A broker process for the crash test: registers node <id> in etcd with a
 * 2 s lease, prints "registered", then idles until killed with SIGKILL.
 * Usage: crash_child.ts <endpoint> <prefix> <nodeId>
 */
import { brokerInfo } from "../conformance.ts";
import { EtcdDiscovery } from "../mod.ts";

const [endpoint, prefix, nodeIdText] = Deno.args;
if (
  endpoint === undefined || prefix === undefined || nodeIdText === undefined
) {
  throw new TypeError("Usage: crash_child.ts <endpoint> <prefix> <nodeId>");
}
const discovery = new EtcdDiscovery({
  type: "etcd",
  endpoints: [endpoint],
  username: "",
  password: "",
  timeoutMs: 2_000,
  prefix,
  peers: [],
}, { leaseTtlSeconds: 2, log: () => {} });
await discovery.register(brokerInfo(Number(nodeIdText)));
console.log("registered");
