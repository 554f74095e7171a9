// An agent's workflows and AI output as a UI wants them, kept up to date from a subscription: a snapshot
// replaces everything, each event changes one workflow or stream. Pure data, no DOM.

import type {
  AgentState,
  ChannelEvent,
  SnapshotEvent,
  StreamStatus,
  StreamSummary,
  SubscriptionItem,
  Workflow,
} from "./types.js";
import { deltaCount, isStreamDelta, isStreamEnd, isStreamStart } from "./types.js";

export interface StreamView {
  stream_id: string;
  workflow_id: string;
  status: StreamStatus;
  /**
   * The output so far. Empty for a stream that had ended before this view first saw it, until
   * `AgentView.fillText` fetched what it ended with.
   */
  text: string;
  /** The index the next delta carries. */
  index: number;
  /**
   * False when the text is not known whole (the stream ended before a snapshot, which carries only open
   * streams' text, or pieces were missed); `AgentView.fillText` fetches an ended one's.
   */
  complete: boolean;
  reason: string | null;
}

/** A workflow as the view holds it: the server's document, with its streams as ids. */
export interface WorkflowView extends Omit<Workflow, "streams"> {
  /** Stream ids in start order. */
  streams: string[];
}

/** Where an AgentView gets an ended stream's text: an AgentwireClient or a Publisher. */
export interface StreamTextSource {
  streamText(streamId: string): Promise<string | null>;
}

export interface AgentViewOptions {
  /** Fills ended streams' text on demand (`fillText`); without one, `fillText` leaves them as they are. */
  textSource?: StreamTextSource;
}

export class AgentView {
  /** By id, in creation order. */
  readonly workflows = new Map<string, WorkflowView>();
  readonly streams = new Map<string, StreamView>();
  /** The seq of the last event applied (the snapshot's seq after a snapshot). */
  seq = 0;
  epoch = "";
  private readonly textSource: StreamTextSource | undefined;
  /** Fetches in flight or done, by stream id: each ended stream's text is asked for once. */
  private readonly fetches = new Map<string, Promise<StreamView | undefined>>();

  constructor(options: AgentViewOptions = {}) {
    this.textSource = options.textSource;
  }

  /**
   * True when the stream has ended but this view lacks its text (a snapshot carries only open streams'
   * text, or pieces were missed): `fillText` would fetch it.
   */
  needsText(streamId: string): boolean {
    const st = this.streams.get(streamId);
    return st !== undefined && st.status !== "streaming" && !st.complete;
  }

  /**
   * Fetches an ended stream's text from the server, once, when the view lacks it (see `needsText`), and
   * resolves to the stream with it filled in. Call it when the stream is shown. A failed fetch may be
   * retried by calling again; the stream as it is (or undefined when gone) when there is nothing to do.
   */
  fillText(streamId: string): Promise<StreamView | undefined> {
    const pending = this.fetches.get(streamId);
    if (pending) return pending;
    if (!this.textSource || !this.needsText(streamId)) return Promise.resolve(this.streams.get(streamId));
    const fetch = this.textSource.streamText(streamId).then(
      (text) => {
        const st = this.streams.get(streamId);
        if (st && text !== null && st.status !== "streaming" && !st.complete) {
          st.text = text;
          st.complete = true;
        }
        return st;
      },
      (error: unknown) => {
        this.fetches.delete(streamId);
        throw error;
      },
    );
    this.fetches.set(streamId, fetch);
    return fetch;
  }

  /** Applies a snapshot or an event; returns the id of the workflow it touched ("*" for a snapshot, null for none). */
  apply(item: SubscriptionItem): string | null {
    if (item.type === "snapshot") {
      this.applySnapshot(item);
      return "*";
    }
    this.seq = item.seq;
    return this.applyEvent(item);
  }

  /** The workflow's streams, in start order. */
  streamsOf(workflowId: string): StreamView[] {
    const wf = this.workflows.get(workflowId);
    if (!wf) return [];
    return wf.streams.map((id) => this.streams.get(id)).filter((s): s is StreamView => s !== undefined);
  }

  private applySnapshot(snapshot: SnapshotEvent): void {
    this.seq = snapshot.data.seq;
    this.epoch = snapshot.data.epoch;
    const state: AgentState = snapshot.data.state ?? { workflows: [], streams: [] };
    const known = new Map(this.streams);
    this.workflows.clear();
    this.streams.clear();
    const open = new Map((state.streams ?? []).map((s) => [s.stream_id, s]));
    for (const wf of state.workflows ?? []) {
      this.workflows.set(wf.id, fromWorkflow(wf));
      for (const summary of wf.streams ?? []) {
        const live = open.get(summary.stream_id);
        const before = known.get(summary.stream_id);
        if (live) {
          this.streams.set(summary.stream_id, {
            stream_id: summary.stream_id,
            workflow_id: wf.id,
            status: "streaming",
            text: live.text,
            index: live.index,
            complete: true,
            reason: null,
          });
        } else {
          // Ended: a snapshot has no text for it; keep what this view saw streaming in.
          this.streams.set(summary.stream_id, endedFromSummary(wf.id, summary, before));
        }
      }
    }
    // Streams gone with their workflow (deleted while this view was away) need no fetch kept.
    for (const id of [...this.fetches.keys()]) if (!this.streams.has(id)) this.fetches.delete(id);
  }

  private applyEvent(event: ChannelEvent): string | null {
    switch (event.type) {
      case "workflow_created": {
        this.workflows.set(event.data.id, fromWorkflow(event.data));
        return event.data.id;
      }
      case "requirements_submitted": {
        const wf = this.touch(event.data.workflow_id, event.ts);
        if (wf) wf.requirements = event.data.requirements;
        return event.data.workflow_id;
      }
      case "phase_changed": {
        const wf = this.touch(event.data.workflow_id, event.ts);
        if (wf) {
          wf.phase = event.data.to;
          wf.phase_reason = event.data.reason ?? null;
        }
        return event.data.workflow_id;
      }
      case "progress": {
        const wf = this.touch(event.data.workflow_id, event.ts);
        if (wf) {
          wf.progress = event.data.percent;
          wf.progress_message = event.data.message ?? null;
        }
        return event.data.workflow_id ?? null;
      }
      case "stream": {
        const d = event.data;
        const wf = this.workflows.get(d.workflow_id);
        let st = this.streams.get(d.stream_id);
        if (!st) {
          st = { stream_id: d.stream_id, workflow_id: d.workflow_id, status: "streaming", text: "", index: 0, complete: true, reason: null };
          this.streams.set(d.stream_id, st);
          if (wf && !wf.streams.includes(d.stream_id)) wf.streams.push(d.stream_id);
        }
        if (isStreamStart(d)) {
          st.status = "streaming";
        } else if (isStreamDelta(d)) {
          // A merged delta stands for `count` deltas from `index` on, its text theirs concatenated.
          const next = d.index + deltaCount(d);
          if (d.index === st.index) {
            st.text += d.delta;
            st.index = next;
          } else if (d.index > st.index) {
            st.complete = false;  // pieces this view never got
            st.text += d.delta;
            st.index = next;
          } else if (next > st.index) {
            // Merged over deltas this view already has: where the new part of the text starts is unknown.
            st.complete = false;
            st.index = next;
          }
        } else if (isStreamEnd(d)) {
          st.status = d.status;
          st.reason = d.reason ?? null;
        }
        return d.workflow_id;
      }
      case "workflow_deleted": {
        const wf = this.workflows.get(event.data.workflow_id);
        for (const id of [...(wf?.streams ?? []), ...(event.data.streams ?? [])]) {
          this.streams.delete(id);
          this.fetches.delete(id);
        }
        this.workflows.delete(event.data.workflow_id);
        return event.data.workflow_id;
      }
      default:
        return null;
    }
  }

  private touch(workflowId: string, ts: string): WorkflowView | undefined {
    const wf = this.workflows.get(workflowId);
    if (wf) wf.updated_at = ts;
    return wf;
  }
}

function fromWorkflow(wf: Workflow): WorkflowView {
  return {
    id: wf.id,
    agent_id: wf.agent_id,
    number: wf.number,
    name: wf.name,
    metadata: wf.metadata ?? {},
    phase: wf.phase,
    phase_reason: wf.phase_reason ?? null,
    progress: wf.progress ?? 0,
    progress_message: wf.progress_message ?? null,
    requirements: wf.requirements ?? null,
    streams: (wf.streams ?? []).map((s) => s.stream_id),
    created_at: wf.created_at ?? null,
    updated_at: wf.updated_at ?? null,
  };
}

function endedFromSummary(workflowId: string, summary: StreamSummary, before: StreamView | undefined): StreamView {
  const seenWhole = before !== undefined && before.complete && before.index === summary.deltas;
  return {
    stream_id: summary.stream_id,
    workflow_id: workflowId,
    status: summary.status,
    text: seenWhole ? before.text : "",
    index: summary.deltas,
    complete: seenWhole,
    reason: summary.reason,
  };
}
