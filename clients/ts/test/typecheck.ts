// Compiled (not run) by `npm run typecheck`: the public types narrow the way the README promises.
import {
  AgentView,
  AgentwireClient,
  AgentwireError,
  AuthenticationError,
  PermissionDeniedError,
  type TokenProvider,
  deltaCount,
  firstSeqOf,
  isCustomEvent,
  isStreamDelta,
  type ChannelEvent,
  type ConnectionState,
  type SubscriptionItem,
} from "../src/index.js";

const client = new AgentwireClient({ url: "http://127.0.0.1:8080" });

function handle(event: ChannelEvent): string {
  switch (event.type) {
    case "workflow_created":
      return event.data.name;
    case "phase_changed":
      return `${event.data.from} → ${event.data.to}`;
    case "progress":
      return `${event.data.percent.toFixed(0)}%`;
    case "stream":
      // a merged delta stands for `count` deltas (seqs first_seq..seq); both are optional numbers
      if (isStreamDelta(event.data)) return `${event.data.delta} ×${deltaCount(event.data)} ${event.data.count ?? 1}`;
      return event.data.stream_id;
    case "requirements_submitted":
      return String(event.data.requirements.revision);
    case "workflow_deleted":
      return event.data.workflow_id;
    default:
      if (isCustomEvent<{ n: number }>(event, "tick")) return String(event.data.n + 1);
      return `${String(event.type)} ${firstSeqOf(event)}..${event.seq} ${event.first_seq ?? event.seq}`;
  }
}

async function iterate(): Promise<void> {
  const sub = client.subscribe("agent-7", {
    start: "snapshot",
    onStateChange: (state: ConnectionState) => void state,
  });
  for await (const item of sub) {
    const it: SubscriptionItem = item;
    if (it.type === "snapshot") {
      const n: number = it.data.state.workflows.length + it.data.seq;
      void n;
      continue;
    }
    handle(it);
  }
}

async function publish(): Promise<void> {
  const pub = client.publisher({ retries: 2 });
  try {
    const wf = await pub.createWorkflow({ agent_id: "agent-7", name: "x" });
    await pub.changePhase(wf.id, "design", { reason: "ok" });
  } catch (e) {
    if (e instanceof AgentwireError && e.code === "illegal_transition") void e.details;
  }
}

async function finished(): Promise<void> {
  const text: string | null = await client.streamText("st_1");
  const streams = await client.workflowStreams("wf_1");
  const status: "streaming" | "completed" | "failed" = streams[0]!.status;
  const page = await client.agents({ limit: 10, after: "agent-1" });
  const next: string | null = page.next;
  const count: number = page.agents[0]!.workflows;
  const view = new AgentView({ textSource: client });
  const st = view.needsText("st_1") ? await view.fillText("st_1") : undefined;
  void [text, status, next, count, st?.text];
}

// Credentials: a provider may answer synchronously or with a promise; refusals are AgentwireErrors.
const fixed: TokenProvider = () => "a.b.c";
const fetched: TokenProvider = async () => "a.b.c";
const authed = new AgentwireClient({ url: "https://example.com", tokenProvider: fetched, apiKey: "key" });
authed.subscribe("agent-7", { tokenProvider: fixed }).onStateChange((_state, change) => {
  const e = change.error;
  if (e instanceof PermissionDeniedError || e instanceof AuthenticationError) void (e.code satisfies string);
});
const refusal: AgentwireError = new AuthenticationError(401, "token_expired", "expired");
void refusal.retryable;

void iterate;
void publish;
void finished;
