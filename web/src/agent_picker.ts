// The agent picker: the agents that have workflows (GET /api/agents), a page at a time, each a link that
// follows it. Kept roughly current from the followed agent's own workflow_created / workflow_deleted.

import type { AgentSummary, AgentwireClient } from "./client/index.js";
import { h } from "./dom.js";

/** Agents asked for per page. */
const PAGE = 50;

export interface PickerElements {
  list: HTMLElement;
  note: HTMLElement;
  more: HTMLElement;
  reload: HTMLElement;
}

export class AgentPicker {
  private readonly items = new Map<string, { li: HTMLLIElement; link: HTMLAnchorElement; count: HTMLElement; workflows: number }>();
  /** The `after` of the next page; null once the last page is in. */
  private next: string | null = null;
  private current: string | null = null;
  /** Bumped by each reload, so that a page answered for an earlier one is dropped. */
  private generation = 0;
  private loading = false;

  constructor(
    private readonly els: PickerElements,
    private readonly client: AgentwireClient,
    private readonly onPick: (agentId: string) => void,
  ) {
    els.more.addEventListener("click", () => void this.page());
    els.reload.addEventListener("click", () => this.load());
  }

  /** Starts over from the first page. */
  load(): void {
    this.generation++;
    this.loading = false;
    this.items.clear();
    this.next = null;
    this.els.list.replaceChildren();
    void this.page(true);
  }

  /** Marks the agent the page follows. */
  select(agentId: string): void {
    this.current = agentId;
    for (const [id, item] of this.items) item.link.setAttribute("aria-current", String(id === agentId));
  }

  /** The followed agent got a workflow: count it, or list the agent when the whole list is in. */
  workflowCreated(agentId: string): void {
    const item = this.items.get(agentId);
    if (item) this.setCount(agentId, item.workflows + 1);
    else if (this.next === null && !this.loading) this.load();
  }

  workflowDeleted(agentId: string): void {
    const item = this.items.get(agentId);
    if (!item) return;
    if (item.workflows > 1) return this.setCount(agentId, item.workflows - 1);
    item.li.remove();
    this.items.delete(agentId);
    this.showNote();
  }

  private async page(first = false): Promise<void> {
    if (this.loading || (!first && this.next === null)) return;
    const generation = this.generation;
    this.loading = true;
    this.els.more.hidden = true;
    try {
      const page = await this.client.agents({ limit: PAGE, after: first ? undefined : (this.next ?? undefined) });
      if (generation !== this.generation) return;
      for (const agent of page.agents) this.add(agent);
      this.next = page.next && page.agents.length > 0 ? page.next : null;
      this.showNote();
    } catch (error) {
      if (generation !== this.generation) return;
      this.els.note.hidden = false;
      this.els.note.textContent = `Could not list the agents: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      if (generation === this.generation) {
        this.loading = false;
        this.els.more.hidden = this.next === null;
      }
    }
  }

  private add(agent: AgentSummary): void {
    if (this.items.has(agent.agent_id)) return;
    const count = h("span", { class: "agent-count muted" });
    const link = h(
      "a",
      {
        class: "agent-link",
        href: `?agent=${encodeURIComponent(agent.agent_id)}`,
        "data-agent-id": agent.agent_id,
        "aria-current": String(agent.agent_id === this.current),
      },
      h("span", { class: "agent-id" }, agent.agent_id),
      count,
    );
    link.addEventListener("click", (e) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;  // a new tab: let it
      e.preventDefault();
      this.onPick(agent.agent_id);
    });
    const li = h("li", {}, link);
    this.items.set(agent.agent_id, { li, link, count, workflows: agent.workflows });
    this.setCount(agent.agent_id, agent.workflows);
    this.els.list.append(li);
  }

  private setCount(agentId: string, workflows: number): void {
    const item = this.items.get(agentId);
    if (!item) return;
    item.workflows = workflows;
    item.count.textContent = `${workflows} workflow${workflows === 1 ? "" : "s"}`;
  }

  private showNote(): void {
    this.els.note.hidden = this.items.size > 0;
    this.els.note.textContent = "No agent has workflows yet.";
  }
}
