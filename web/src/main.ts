// The dashboard: follows one agent (chosen in the form or with ?agent=) through the TypeScript client,
// keeps an AgentView of its workflows from the snapshot and the events after it, and shows each
// workflow's phase, progress and AI output as they change, with the connection state.

import {
  AgentView,
  AgentwireClient,
  isStreamDelta,
  isValidAgentId,
  isWorkflowEvent,
  type ChannelEvent,
  type ConnectionState,
  type Phase,
  type SnapshotEvent,
  type StateChange,
  type Subscription,
} from "./client/index.js";
import { clock, h } from "./dom.js";
import { WorkflowCard } from "./workflow_card.js";

const MAX_LOG = 200;

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

// The page is served by agentwire, so the server is the page's origin.
const client = new AgentwireClient();
let sub: Subscription | null = null;
let view = new AgentView();
const cards = new Map<string, WorkflowCard>();
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
  connectionText.textContent = text;
  connection.title = change?.reason ?? "";
}

function showPosition(): void {
  const p = sub?.position;
  position.textContent = p ? `seq ${p.seq} · epoch ${p.epoch.slice(0, 8)}` : "";
}

function follow(agentId: string): void {
  sub?.close();
  view = new AgentView();
  cards.clear();
  stoppedAt.clear();
  workflowsEl.replaceChildren();
  log.replaceChildren();
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
  cards.clear();
  workflowsEl.replaceChildren();
  for (const id of view.workflows.keys()) renderWorkflow(id);
  addLog(null, "snapshot", `${view.workflows.size} workflow(s), ${snapshot.data.state?.streams?.length ?? 0} open stream(s)`, snapshot.ts);
  showPosition();
  updateEmpty();
}

function onEvent(event: ChannelEvent): void {
  if (event.type === "phase_changed" && (event.data.to === "failed" || event.data.to === "cancelled")) {
    stoppedAt.set(event.data.workflow_id, event.data.from);
  }
  const touched = view.apply(event);
  if (event.type === "workflow_deleted") {
    cards.get(event.data.workflow_id)?.root.remove();
    cards.delete(event.data.workflow_id);
  } else if (event.type === "stream") {
    // The hot path: only the stream's own box changes.
    const card = cards.get(event.data.workflow_id);
    const st = view.streams.get(event.data.stream_id);
    if (card && st && isStreamDelta(event.data)) card.updateStream(st);
    else if (touched) renderWorkflow(touched);
  } else if (touched && touched !== "*") {
    renderWorkflow(touched);
  }
  addLog(event.seq, String(event.type), summarize(event), event.ts);
  showPosition();
  updateEmpty();
}

function renderWorkflow(id: string): void {
  const wf = view.workflows.get(id);
  if (!wf) return;
  let card = cards.get(id);
  if (!card) {
    card = new WorkflowCard(id);
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
      return "done" in d ? `ended · ${d.status}` : "started";
    }
    case "workflow_deleted":
      return event.data.workflow_id;
  }
}

function addLog(seq: number | null, type: string, text: string, ts: string): void {
  const item = h(
    "li",
    { class: `log-item type-${type}` },
    h("span", { class: "log-seq mono" }, seq === null ? "—" : String(seq)),
    h("span", { class: "log-type" }, type),
    h("span", { class: "log-text" }, text),
    h("time", { class: "log-time muted", datetime: ts }, clock(ts)),
  );
  log.prepend(item);
  while (log.childElementCount > MAX_LOG) log.lastElementChild?.remove();
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

const initial = new URLSearchParams(window.location.search).get("agent");
if (initial && isValidAgentId(initial)) {
  input.value = initial;
  follow(initial);
} else {
  showState("idle");
}
