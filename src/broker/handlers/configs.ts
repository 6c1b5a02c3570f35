/**
 * DescribeConfigs (v0-4), AlterConfigs (v0-2) and IncrementalAlterConfigs
 * (v0-1) for topics and brokers. Topic configs and dynamic broker configs
 * (the broker defaults of topic configs, for one broker or, named "", for
 * all) live in the controller state; the rest of a broker's come from its
 * config file and are read-only.
 */
import {
  type AlterConfigsRequest,
  type AlterConfigsResponseInput,
  type DescribeConfigsRequest,
  type DescribeConfigsResponseInput,
  type DescribeConfigsResponseResultsInput,
  ErrorCode,
  type IncrementalAlterConfigsRequest,
  type IncrementalAlterConfigsResponseInput,
} from "../../protocol/mod.ts";
import { ConfigSource, ResourceType } from "../configs.ts";
import type { ConfigOp, ConfigOpType } from "../controller/mod.ts";
import type { PartitionOutcome } from "../ports.ts";
import {
  allows,
  allowsOnCluster,
  clusterRefusal,
  topicRefusal,
} from "./authorize.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";

/** IncrementalAlterConfigs' operation codes, in Kafka's numbering. */
const INCREMENTAL_OPS: readonly ConfigOpType[] = [
  "set",
  "delete",
  "append",
  "subtract",
];

function refused(code: number, errorMessage: string): PartitionOutcome {
  return { errorCode: code, errorMessage };
}

/** Null when `name` names this broker (or, empty, the cluster's default). */
function checkBrokerName(ctx: BrokerContext, name: string): string | null {
  return name === "" || name === String(ctx.self.nodeId)
    ? null
    : `Broker resource "${name}" is not this broker: ask broker ${name} itself, or name "" or "${ctx.self.nodeId}"`;
}

/**
 * The refusal of a config operation the principal may not do: on a topic
 * it needs the operation on that topic, on a broker on the cluster.
 */
function configsRefusal(
  ctx: BrokerContext,
  request: RequestInfo,
  resource: {
    type: number;
    name: string;
    operation: "describe_configs" | "alter_configs";
  },
): PartitionOutcome | null {
  if (resource.type === ResourceType.TOPIC) {
    return allows(ctx, request, {
        type: "topic",
        name: resource.name,
        operation: resource.operation,
      })
      ? null
      : refused(
        ErrorCode.TOPIC_AUTHORIZATION_FAILED,
        topicRefusal(resource.operation, resource.name),
      );
  }
  if (resource.type === ResourceType.BROKER) {
    return allowsOnCluster(ctx, request, resource.operation) ? null : refused(
      ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
      clusterRefusal(resource.operation),
    );
  }
  return null;
}

export function handleDescribeConfigs(
  ctx: BrokerContext,
  req: DescribeConfigsRequest,
  request: RequestInfo,
): DescribeConfigsResponseInput {
  const results = req.resources.map(
    (r): DescribeConfigsResponseResultsInput => {
      const answer = (outcome: PartitionOutcome) => ({
        ...outcome,
        resourceType: r.resourceType,
        resourceName: r.resourceName,
        configs: [],
      });
      const refusal = configsRefusal(ctx, request, {
        type: r.resourceType,
        name: r.resourceName,
        operation: "describe_configs",
      });
      if (refusal !== null) return answer(refusal);
      let described;
      if (r.resourceType === ResourceType.TOPIC) {
        const topic = ctx.cluster.topic(r.resourceName);
        if (topic === undefined) {
          return answer(refused(
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            `Topic "${r.resourceName}" does not exist`,
          ));
        }
        described = ctx.configs.describeTopic(
          topic.configs,
          r.configurationKeys,
          ctx.cluster.brokerConfigs(),
        );
      } else if (r.resourceType === ResourceType.BROKER) {
        const wrong = checkBrokerName(ctx, r.resourceName);
        if (wrong !== null) {
          return answer(refused(ErrorCode.INVALID_REQUEST, wrong));
        }
        described = ctx.configs.describe(
          r.configurationKeys,
          ctx.cluster.brokerConfigs(),
        );
      } else {
        return answer(refused(
          ErrorCode.INVALID_REQUEST,
          `Resource type ${r.resourceType} has no configs here: raftq serves topics (2) and brokers (4)`,
        ));
      }
      return {
        ...answer({ errorCode: ErrorCode.NONE, errorMessage: null }),
        configs: described.map((c) => ({
          name: c.name,
          value: c.value,
          readOnly: c.readOnly,
          isDefault: c.source === ConfigSource.DEFAULT_CONFIG,
          configSource: c.source,
          isSensitive: c.sensitive,
          synonyms: req.includeSynonyms ? [...c.synonyms] : [],
          configType: c.type,
          documentation: req.includeDocumentation ? c.doc : null,
        })),
      };
    },
  );
  return { throttleTimeMs: 0, results };
}

interface Alteration {
  resourceType: number;
  resourceName: string;
  /** The change, or why the request for this resource is malformed. */
  ops: ConfigOp[] | string;
}

/** Each resource's answer; a resource named twice is refused as Kafka does. */
async function alterAll(
  ctx: BrokerContext,
  alterations: readonly Alteration[],
  opts: { replace: boolean; validateOnly: boolean; request: RequestInfo },
) {
  const key = (a: Alteration) => `${a.resourceType}\0${a.resourceName}`;
  const count = new Map<string, number>();
  for (const a of alterations) count.set(key(a), (count.get(key(a)) ?? 0) + 1);
  return await Promise.all(alterations.map(async (a) => {
    const outcome = await alterOne(ctx, a, count.get(key(a))! > 1, opts);
    if (outcome.errorCode === ErrorCode.NONE && !opts.validateOnly) {
      ctx.log(
        a.resourceType === ResourceType.TOPIC
          ? `topic "${a.resourceName}" configs altered`
          : a.resourceName === ""
          ? "every broker's default configs altered"
          : `broker ${a.resourceName} configs altered`,
      );
    }
    return {
      ...outcome,
      resourceType: a.resourceType,
      resourceName: a.resourceName,
    };
  }));
}

function alterOne(
  ctx: BrokerContext,
  a: Alteration,
  duplicate: boolean,
  opts: { replace: boolean; validateOnly: boolean; request: RequestInfo },
): Promise<PartitionOutcome> | PartitionOutcome {
  const refusal = configsRefusal(ctx, opts.request, {
    type: a.resourceType,
    name: a.resourceName,
    operation: "alter_configs",
  });
  if (refusal !== null) return refusal;
  if (duplicate) {
    return refused(
      ErrorCode.INVALID_REQUEST,
      `Resource "${a.resourceName}" appears more than once in the request`,
    );
  }
  if (typeof a.ops === "string") {
    return refused(ErrorCode.INVALID_REQUEST, a.ops);
  }
  const change = {
    replace: opts.replace,
    ops: a.ops,
    validateOnly: opts.validateOnly,
  };
  if (a.resourceType === ResourceType.BROKER) {
    const wrong = checkBrokerName(ctx, a.resourceName);
    return wrong === null
      ? ctx.cluster.alterBrokerConfigs(a.resourceName, change)
      : refused(ErrorCode.INVALID_REQUEST, wrong);
  }
  if (a.resourceType !== ResourceType.TOPIC) {
    return refused(
      ErrorCode.INVALID_REQUEST,
      `Resource type ${a.resourceType} has no configs to alter here`,
    );
  }
  return ctx.cluster.alterTopicConfigs(a.resourceName, change);
}

function duplicateKey(names: readonly string[]): string | undefined {
  return names.find((n, i) => names.indexOf(n) !== i);
}

export async function handleAlterConfigs(
  ctx: BrokerContext,
  req: AlterConfigsRequest,
  request: RequestInfo,
): Promise<AlterConfigsResponseInput> {
  const alterations = req.resources.map((r): Alteration => {
    const twice = duplicateKey(r.configs.map((c) => c.name));
    return {
      resourceType: r.resourceType,
      resourceName: r.resourceName,
      ops: twice !== undefined
        ? `Config "${twice}" is set twice for "${r.resourceName}"`
        : r.configs.map((c) => ({
          key: c.name,
          op: c.value === null ? "delete" : "set",
          value: c.value,
        })),
    };
  });
  const responses = await alterAll(ctx, alterations, {
    replace: true,
    validateOnly: req.validateOnly,
    request,
  });
  return { throttleTimeMs: 0, responses };
}

export async function handleIncrementalAlterConfigs(
  ctx: BrokerContext,
  req: IncrementalAlterConfigsRequest,
  request: RequestInfo,
): Promise<IncrementalAlterConfigsResponseInput> {
  const alterations = req.resources.map((r): Alteration => {
    const twice = duplicateKey(r.configs.map((c) => c.name));
    const badOp = r.configs.find((c) =>
      INCREMENTAL_OPS[c.configOperation] === undefined
    );
    return {
      resourceType: r.resourceType,
      resourceName: r.resourceName,
      ops: twice !== undefined
        ? `Config "${twice}" is altered twice for "${r.resourceName}"`
        : badOp !== undefined
        ? `Config operation ${badOp.configOperation} for "${badOp.name}" is unknown: 0 set, 1 delete, 2 append, 3 subtract`
        : r.configs.map((c) => ({
          key: c.name,
          op: INCREMENTAL_OPS[c.configOperation]!,
          value: c.value,
        })),
    };
  });
  const responses = await alterAll(ctx, alterations, {
    replace: false,
    validateOnly: req.validateOnly,
    request,
  });
  return { throttleTimeMs: 0, responses };
}
