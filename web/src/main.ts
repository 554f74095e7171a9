// The dashboard: follows one agent (chosen in the form, the agent picker or with ?agent=) through the
// TypeScript client, keeps an AgentView of its workflows from the snapshot and the events after it, and
// shows each workflow's phase, progress and AI output as they change, with the connection state. Finished
// outputs, whose text a snapshot does not carry, are fetched when shown.

import {
  AgentView,
  AgentwireClient,
  AgentwireError,
  isStreamDelta,
  isStreamStart,
  isValidAgentId,
  isWorkflowEvent,
  type ChannelEvent,
  type ConnectionState,
  type Phase,
  type SnapshotEvent,
  type StateChange,
  type StreamView,
  type Subscription,
} from "./client/index.js";
import { AgentPicker } from "./agent_picker.js";
import { clock, h } from "./dom.js";
import { WorkflowCard } from "./workflow_card.js";

const MAX_LOG = 200;
/** Events looked through for where failed or cancelled workflows stopped, when the page did not see it. */
const STOP_LOOKBACK = 1000;

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`dashboard: #${id} is missing from index.html`);
  return el as T;
};

const form = $<HTMLFormElement>("agent-form");
const input = $<HTMLInputElement>("agent-input");
const connection = $("connection");
const connectionText = $("connection-text");
const agentName = $("agent-name");
const position = $("position");
const empty = $("empty");
const workflowsEl = $("workflows");
const log = $<HTMLOListElement>("event-log");

// A server with keys wants a token: `?token=` in the page's URL (fine for a dev tool; it stays in the
// browser's history and in the access logs of anything in between). It goes to the WebSocket as the
// bearer subprotocol and to the HTTP GETs as Authorization: Bearer.
const token = new URLSearchParams(window.location.search).get("token") || undefined;
// The page is served by agentwire, so the server is the page's origin.
const client = ((): AgentwireClient => {
  try {
    return new AgentwireClient(token ? { token } : {});
  } catch (e) {
    console.warn("agentwire: ignoring ?token=:", e);  // not a JWT; the server then answers token_missing
    return new AgentwireClient();
  }
})();
const api = client.publisher();
let sub: Subscription | null = null;
let view = new AgentView({ textSource: client });
const cards = new Map<string, WorkflowCard>();
/** The event log's row of each stream: its start, deltas and end fold into one row that grows. */
const streamRows = new Map<string, HTMLLIElement>();
const picker = new AgentPicker(
  { list: $("agent-list"), note: $("agents-note"), more: $("agents-more"), reload: $("agents-reload") },
  client,
  (agentId) => {
    input.value = agentId;
    input.setCustomValidity("");
    follow(agentId);
  },
);
/** Where failed or cancelled workflows stopped, as seen in phase_changed events. */
const stoppedAt = new Map<string, Phase>();

const STATE_TEXT: Record<ConnectionState | "idle", string> = {
  idle: "not connected",
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  resumed: "resumed · live",
  closed: "closed",
};

function showState(state: ConnectionState | "idle", change?: StateChange): void {
  connection.dataset.state = state;
  let text = STATE_TEXT[state];
  if (state === "reconnecting" && change?.delayMs !== undefined) {
    text += ` (attempt ${change.attempt ?? 1})`;
  }
  const refusal = state === "closed" && change?.error instanceof AgentwireError ? change.error : null;
  if (refusal) text += ` · ${refusal.code}`;  // token_missing, token_expired, agent_forbidden, …
  connectionText.textContent = text;
  connection.title = refusal ? `${refusal.message}${token ? "" : " (add ?token=<jwt> to the page's URL)"}` : (change?.reason ?? "");
}

function showPosition(): void {
  const p = sub?.position;
  position.textContent = p ? `seq ${p.seq} · epoch ${p.epoch.slice(0, 8)}` : "";
}

function follow(agentId: string): void {
  sub?.close();
  view = new AgentView({ textSource: client });
  dropCards();
  stoppedAt.clear();
  streamRows.clear();
  log.replaceChildren();
  picker.select(agentId);
  agentName.textContent = `· ${agentId}`;
  empty.textContent = "Waiting for the agent's state…";
  empty.hidden = false;
  document.title = `${agentId} · agentwire`;
  const url = new URL(window.location.href);
  if (url.searchParams.get("agent") !== agentId) {
    url.searchParams.set("agent", agentId);
    history.replaceState(null, "", url);
  }
  const current = client.subscribe(agentId, {
    start: "snapshot",
    onSnapshot: (snapshot) => {
      if (sub === current) onSnapshot(snapshot);
    },
    onEvent: (event) => {
      if (sub === current) onEvent(event);
    },
    onStateChange: (state, change) => {
      if (sub === current) showState(state, change);
    },
    onError: (error) => console.warn("agentwire:", error),
  });
  sub = current;
  showState(current.state);
}

function onSnapshot(snapshot: SnapshotEvent): void {
  view.apply(snapshot);
  for (const id of [...stoppedAt.keys()]) if (!view.workflows.has(id)) stoppedAt.delete(id);
  dropCards();
  for (const id of view.workflows.keys()) renderWorkflow(id);
  addLog(null, "snapshot", `${view.workflows.size} workflow(s), ${snapshot.data.state?.streams?.length ?? 0} open stream(s)`, snapshot.ts);
  showPosition();
  updateEmpty();
  void findStops(sub);
}

function dropCards(): void {
  for (const card of cards.values()) card.dispose();
  cards.clear();
  workflowsEl.replaceChildren();
}

/** A finished output came into view without its text: fetch it (once) and show it. */
function requestText(streamId: string): void {
  const current = view;
  current.fillText(streamId).then(
    (st) => {
      if (view !== current || !st) return;
      const card = cards.get(st.workflow_id);
      if (!card) return;
      if (st.complete) card.updateStream(st);
      else card.textUnavailable(st, "the server did not keep its text");
    },
    (error: unknown) => {
      const st = current.streams.get(streamId);
      if (view !== current || !st) return;
      cards.get(st.workflow_id)?.textUnavailable(st, `its text could not be loaded: ${error instanceof Error ? error.message : String(error)}`);
    },
  );
}

/**
 * Where failed or cancelled workflows stopped, for those the page did not see stop: from the phase_changed
 * events among the agent's latest STOP_LOOKBACK (the workflow document does not say).
 */
async function findStops(current: Subscription | null): Promise<void> {
  const unknown = [...view.workflows.values()].filter(
    (wf) => (wf.phase === "failed" || wf.phase === "cancelled") && !stoppedAt.has(wf.id),
  );
  if (!current || unknown.length === 0) return;
  try {
    const page = await api.history(current.agentId, { since: Math.max(0, view.seq - STOP_LOOKBACK), limit: STOP_LOOKBACK });
    if (sub !== current) return;
    for (const ev of page.events) {
      if (ev.type !== "phase_changed" || (ev.data.to !== "failed" && ev.data.to !== "cancelled")) continue;
      if (!stoppedAt.has(ev.data.workflow_id)) {
        stoppedAt.set(ev.data.workflow_id, ev.data.from);
        renderWorkflow(ev.data.workflow_id);
      }
    }
  } catch (error) {
    console.warn("agentwire: could not read the history for where workflows stopped:", error);
  }
}

function onEvent(event: ChannelEvent): void {
  if (event.type === "phase_changed" && (event.data.to === "failed" || event.data.to === "cancelled")) {
    stoppedAt.set(event.data.workflow_id, event.data.from);
  }
  const touched = view.apply(event);
  if (event.type === "workflow_created") picker.workflowCreated(event.agent_id);
  if (event.type === "workflow_deleted") {
    const card = cards.get(event.data.workflow_id);
    card?.dispose();
    card?.root.remove();
    cards.delete(event.data.workflow_id);
    picker.workflowDeleted(event.agent_id);
  } else if (event.type === "stream") {
    // The hot path: only the stream's own box changes.
    const card = cards.get(event.data.workflow_id);
    const st = view.streams.get(event.data.stream_id);
    if (card && st && isStreamDelta(event.data)) card.updateStream(st);
    else if (touched) renderWorkflow(touched);
  } else if (touched && touched !== "*") {
    renderWorkflow(touched);
  }
  if (event.type === "stream") logStream(event.seq, view.streams.get(event.data.stream_id), event.data.stream_id, event.ts);
  else addLog(event.seq, String(event.type), summarize(event), event.ts);
  showPosition();
  updateEmpty();
}

function renderWorkflow(id: string): void {
  const wf = view.workflows.get(id);
  if (!wf) return;
  let card = cards.get(id);
  if (!card) {
    card = new WorkflowCard(id, requestText);
    cards.set(id, card);
    workflowsEl.append(card.root);
  }
  card.update(wf, view.streamsOf(id), stoppedAt.get(id));
}

function updateEmpty(): void {
  empty.hidden = view.workflows.size > 0;
  if (empty.hidden) return;
  empty.textContent = "No workflows yet. They appear here as soon as one is created.";
}

function summarize(event: ChannelEvent): string {
  if (!isWorkflowEvent(event)) return JSON.stringify(event.data).slice(0, 80);
  switch (event.type) {
    case "workflow_created":
      return event.data.name;
    case "requirements_submitted":
      return `revision ${event.data.requirements.revision}`;
    case "phase_changed":
      return `${event.data.from} → ${event.data.to}`;
    case "progress":
      return `${event.data.percent}%${event.data.message ? ` · ${event.data.message}` : ""}`;
    case "stream": {
      const d = event.data;
      if (isStreamDelta(d)) return `#${d.index} ${JSON.stringify(d.delta).slice(0, 40)}`;
      return isStreamStart(d) ? "started" : `ended · ${d.status}`;
    }
    case "workflow_deleted":
      return event.data.workflow_id;
  }
}

function logItem(seq: number | null, type: string, text: string, ts: string): HTMLLIElement {
  return h(
    "li",
    { class: `log-item type-${type}` },
    h("span", { class: "log-seq mono" }, seq === null ? "—" : String(seq)),
    h("span", { class: "log-type" }, type),
    h("span", { class: "log-text" }, text),
    h("time", { class: "log-time muted", datetime: ts }, clock(ts)),
  );
}

function addLog(seq: number | null, type: string, text: string, ts: string): void {
  log.prepend(logItem(seq, type, text, ts));
  trimLog();
}

/** Drops the oldest rows past MAX_LOG; true when it dropped any. */
function trimLog(): boolean {
  let dropped = false;
  while (log.childElementCount > MAX_LOG) {
    log.lastElementChild?.remove();
    dropped = true;
  }
  return dropped;
}

/** A stream event: its stream's one row is brought up to date and moved to the top. */
function logStream(seq: number, st: StreamView | undefined, streamId: string, ts: string): void {
  const text = st ? streamSummary(st) : streamId;
  let row = streamRows.get(streamId);
  if (!row || !row.isConnected) {
    row = logItem(seq, "stream", text, ts);
    row.dataset.streamId = streamId;
    streamRows.set(streamId, row);
  } else {
    row.querySelector(".log-seq")!.textContent = String(seq);
    row.querySelector(".log-text")!.textContent = text;
    const time = row.querySelector("time")!;
    time.setAttribute("datetime", ts);
    time.textContent = clock(ts);
  }
  if (log.firstElementChild !== row) log.prepend(row);
  if (trimLog()) for (const [id, r] of streamRows) if (!r.isConnected) streamRows.delete(id);
}

function streamSummary(st: StreamView): string {
  const state = st.status === "streaming" ? "streaming" : st.status;
  const pieces = `${st.index} piece${st.index === 1 ? "" : "s"}`;
  const flat = st.text.slice(-200).replace(/\s+/g, " ").trim();
  const tail = flat.length > 40 ? `…${flat.slice(-40)}` : flat;
  return tail ? `${state} · ${pieces} · “${tail}”` : `${state} · ${pieces}`;
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const id = input.value.trim();
  if (!isValidAgentId(id)) {
    input.setCustomValidity("1-128 characters of A-Z a-z 0-9 _ . : -");
    input.reportValidity();
    return;
  }
  input.setCustomValidity("");
  follow(id);
});
input.addEventListener("input", () => input.setCustomValidity(""));

picker.load();
const initial = new URLSearchParams(window.location.search).get("agent");
if (initial && isValidAgentId(initial)) {
  input.value = initial;
  follow(initial);
} else {
  showState("idle");
}
