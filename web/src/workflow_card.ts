// One workflow on the page: name, phase stepper, progress bar, requirements, and its AI output streams.
// Updated in place; streamed text is appended, never re-rendered, so long answers stay cheap.

import { PIPELINE, type Phase, type StreamView, type WorkflowView } from "./client/index.js";
import { atBottom, clock, h } from "./dom.js";

const LABELS: Record<Phase, string> = {
  requirements: "Requirements",
  design: "Design",
  implementation: "Implementation",
  testing: "Testing",
  deployment: "Deployment",
  completed: "Completed",
  failed: "Failed",
  cancelled: "Cancelled",
};

interface StreamElements {
  box: HTMLElement;
  pre: HTMLElement;
  status: HTMLElement;
  /** Characters of the stream's text already in `pre`; -1 while `pre` shows a placeholder. */
  rendered: number;
  /** Whether the text in `pre` was known whole: a text fetched later replaces it rather than extends it. */
  complete: boolean;
  /** The text was asked for (once shown) or could not be had: no more asking. */
  asked: boolean;
}

/** What the card asks of the page: an ended stream's text, fetched when its box is shown. */
export type TextRequest = (streamId: string) => void;

// One observer for every card: a finished output's text is fetched when its box scrolls into view.
let visibility: IntersectionObserver | null = null;
const onVisible = new WeakMap<Element, () => void>();

function whenShown(box: HTMLElement, fn: () => void): void {
  if (typeof IntersectionObserver !== "function") return fn();
  visibility ??= new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      visibility?.unobserve(e.target);
      const cb = onVisible.get(e.target);
      onVisible.delete(e.target);
      cb?.();
    }
  });
  onVisible.set(box, fn);
  visibility.observe(box);
}

function forget(box: HTMLElement): void {
  visibility?.unobserve(box);
  onVisible.delete(box);
}

export class WorkflowCard {
  readonly root: HTMLElement;
  private readonly title: HTMLElement;
  private readonly badge: HTMLElement;
  private readonly meta: HTMLElement;
  private readonly stepper: HTMLOListElement;
  private readonly bar: HTMLElement;
  private readonly progress: HTMLElement;
  private readonly progressText: HTMLElement;
  private readonly requirements: HTMLElement;
  private readonly outputs: HTMLElement;
  private readonly streams = new Map<string, StreamElements>();

  constructor(
    readonly id: string,
    private readonly requestText: TextRequest = () => {},
  ) {
    this.title = h("h3", { class: "wf-name" });
    this.badge = h("span", { class: "phase-badge" });
    this.meta = h("div", { class: "wf-meta muted" });
    this.stepper = h("ol", { class: "stepper", "aria-label": "phase" });
    this.bar = h("div", { class: "progress-bar" });
    this.progress = h("div", { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100 }, this.bar);
    this.progressText = h("div", { class: "progress-text" });
    this.requirements = h("div", { class: "requirements" });
    this.outputs = h("div", { class: "outputs" });
    this.root = h(
      "article",
      { class: "workflow", "data-workflow-id": id },
      h("div", { class: "wf-head" }, this.title, this.badge),
      this.meta,
      this.stepper,
      h("div", { class: "progress-row" }, this.progress, this.progressText),
      this.requirements,
      this.outputs,
    );
  }

  /** Shows the workflow as it is now; `stoppedAt` is the phase a failed or cancelled workflow left, when known. */
  update(wf: WorkflowView, streams: StreamView[], stoppedAt: Phase | undefined): void {
    this.root.dataset.phase = wf.phase;
    this.title.textContent = wf.name;
    this.badge.textContent = LABELS[wf.phase] ?? wf.phase;
    this.badge.dataset.phase = wf.phase;
    const when = clock(wf.updated_at);
    this.meta.textContent = `#${wf.number} · ${wf.id}${when ? ` · updated ${when}` : ""}`;
    this.renderStepper(wf.phase, stoppedAt);

    const pct = Math.max(0, Math.min(100, Math.round(wf.progress)));
    this.bar.style.width = `${pct}%`;
    this.progress.setAttribute("aria-valuenow", String(pct));
    this.progressText.textContent = wf.progress_message ? `${pct}% · ${wf.progress_message}` : `${pct}%`;

    this.renderRequirements(wf);
    for (const st of streams) this.updateStream(st);
    for (const [id, els] of this.streams) {
      if (!streams.some((s) => s.stream_id === id)) {
        forget(els.box);
        els.box.remove();
        this.streams.delete(id);
      }
    }
  }

  private renderStepper(phase: Phase, stoppedAt: Phase | undefined): void {
    const ended = phase === "failed" || phase === "cancelled";
    const steps: Phase[] = ended ? [...PIPELINE.slice(0, -1), phase] : [...PIPELINE];
    const current = ended ? steps.length - 1 : PIPELINE.indexOf(phase);
    const stop = ended && stoppedAt ? PIPELINE.indexOf(stoppedAt) : -1;
    this.stepper.replaceChildren(
      ...steps.map((p, i) => {
        let state = i < current ? "done" : i === current ? "current" : "upcoming";
        if (ended && i < current) state = stop < 0 ? "unknown" : i < stop ? "done" : i === stop ? "stopped" : "skipped";
        if (phase === "completed") state = "done";
        return h(
          "li",
          {
            // `reached`: the line into the ✕ / – marker is coloured only from the phase it stopped at.
            class: `step ${state}${i === current ? " current" : ""}${ended && i === current ? ` ${phase}` : ""}${
              ended && i === current && stop === current - 1 ? " reached" : ""
            }`,
            "data-step": p,
            "aria-current": i === current ? "step" : undefined,
          },
          h("span", { class: "step-dot", "aria-hidden": "true" }),
          h("span", { class: "step-label" }, LABELS[p]),
        );
      }),
    );
  }

  private renderRequirements(wf: WorkflowView): void {
    const req = wf.requirements;
    if (!req) {
      this.requirements.replaceChildren();
      return;
    }
    const open = this.requirements.querySelector("details")?.open ?? false;
    const items = (req.items ?? []).map((item) => {
      if (typeof item === "string") return h("li", {}, item);
      const o = item as Record<string, unknown>;
      const label = o.title ?? o.text ?? o.name ?? o.description;
      return h("li", {}, typeof label === "string" ? label : JSON.stringify(item));
    });
    this.requirements.replaceChildren(
      h(
        "details",
        { open },
        h("summary", {}, `Requirements · revision ${req.revision}`),
        req.text ? h("p", { class: "req-text" }, req.text) : null,
        items.length > 0 ? h("ul", { class: "req-items" }, ...items) : null,
      ),
    );
  }

  /** Brings one stream's box up to date, appending only the text that is new. */
  updateStream(st: StreamView): void {
    let els = this.streams.get(st.stream_id);
    if (!els) {
      const pre = h("pre", { class: "stream-text", "data-stream-id": st.stream_id });
      const status = h("span", { class: "stream-status" });
      const box = h(
        "div",
        { class: "stream", "data-stream-id": st.stream_id },
        h("div", { class: "stream-head" }, h("span", { class: "stream-label" }, "AI output"), status),
        pre,
      );
      els = { box, pre, status, rendered: 0, complete: true, asked: false };
      this.streams.set(st.stream_id, els);
      this.outputs.append(box);
    }
    els.box.dataset.status = st.status;
    els.status.textContent =
      st.status === "streaming" ? "streaming…" : st.status === "failed" ? `failed${st.reason ? ` · ${st.reason}` : ""}` : "completed";
    const ended = st.status !== "streaming";
    if (!st.complete && ended && !els.asked) {
      // Ended before this page saw it whole: what it ended with is on the server, fetched once shown.
      const id = st.stream_id;
      els.asked = true;
      els.box.dataset.text = "loading";
      if (st.text.length === 0) this.placeholder(els, "(loading the text…)");
      whenShown(els.box, () => this.requestText(id));
      if (st.text.length === 0) return;
    }
    if (!st.complete && st.text.length === 0) {
      // An ended one keeps what it says (loading, or why its text cannot be had).
      if (!ended || els.box.dataset.text === undefined) {
        this.placeholder(els, `(${st.index} pieces streamed before this page connected)`);
      }
      return;
    }
    const follow = atBottom(els.pre);
    if (els.rendered < 0 || st.text.length < els.rendered || (st.complete && !els.complete)) {
      els.pre.classList.remove("muted");
      els.pre.textContent = st.text;
    } else if (st.text.length > els.rendered) {
      els.pre.append(st.text.slice(els.rendered));
    }
    els.rendered = st.text.length;
    els.complete = st.complete;
    if (st.complete) delete els.box.dataset.text;
    if (follow) els.pre.scrollTop = els.pre.scrollHeight;
  }

  /** Stops watching this card's boxes (the card is being dropped). */
  dispose(): void {
    for (const els of this.streams.values()) forget(els.box);
  }

  /** The text of an ended stream could not be had (`reason` says why): the box says so. */
  textUnavailable(st: StreamView, reason: string): void {
    const els = this.streams.get(st.stream_id);
    if (!els) return;
    els.box.dataset.text = "unavailable";
    if (st.text.length === 0) this.placeholder(els, `(${st.index} pieces streamed; ${reason})`);
  }

  private placeholder(els: StreamElements, text: string): void {
    els.pre.textContent = text;
    els.pre.classList.add("muted");
    els.rendered = -1;
    els.complete = false;
  }
}
