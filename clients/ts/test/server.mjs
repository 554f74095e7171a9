// The real agentwire binary for the tests: start it on a free port (or a given one) with its own data
// dir, read the port from its `event=listening ... port=N` log line, stop it with SIGTERM, start it again.
// Also used by tests/browser.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, "..", "..", "..");

export function binaryPath() {
  return process.env.AGENTWIRE_BIN || join(REPO_ROOT, "build", "agentwire");
}

const LISTENING = /\bevent=listening\b.*\bport=(\d+)/;
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

export function tempDir(prefix = "agentwire-ts-") {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The environment without AGENTWIRE_* settings, which would change the server's options. */
function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("AGENTWIRE_")) env[k] = v;
  return env;
}

export class AgentwireServer {
  /**
   * @param {object} options
   * @param {string} [options.dataDir] a fresh temp dir unless given
   * @param {number} [options.port] 0: a free one
   * @param {string[]} [options.flags] more command-line flags
   */
  constructor({ dataDir, port = 0, flags = [] } = {}) {
    this.ownsDir = !dataDir;
    this.dataDir = dataDir ?? tempDir();
    this.port = port;
    this.flags = flags;
    this.proc = null;
    this.log = [];
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the process (on the same port and data dir as before, if it ran already). */
  async start() {
    if (this.proc) throw new Error("already running");
    const bin = binaryPath();
    if (!existsSync(bin)) throw new Error(`no agentwire binary at ${bin} (build it, or set AGENTWIRE_BIN)`);
    const args = ["--listen", `127.0.0.1:${this.port}`, "--data-dir", this.dataDir, ...this.flags];
    const proc = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"], env: cleanEnv() });
    this.proc = proc;
    // 'exit' does not come when the spawn itself fails: 'error' does, and ends the wait as well.
    this.exited = new Promise((resolve) => {
      proc.once("exit", (code, signal) => resolve({ code, signal }));
      proc.once("error", (error) => resolve({ code: null, signal: null, error }));
    });
    let buffered = "";
    const port = await new Promise((resolvePort, reject) => {
      const timer = setTimeout(() => {
        proc.kill("SIGKILL");
        reject(new Error(`agentwire did not log event=listening within ${START_TIMEOUT_MS} ms:\n${this.log.join("\n")}`));
      }, START_TIMEOUT_MS);
      proc.stderr.setEncoding("utf8");
      proc.stderr.on("data", (chunk) => {
        buffered += chunk;
        let nl;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          this.log.push(line);
          const m = LISTENING.exec(line);
          if (m) {
            clearTimeout(timer);
            resolvePort(Number(m[1]));
          }
        }
      });
      proc.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`agentwire exited (${code ?? signal}) before listening: ${bin} ${args.join(" ")}\n${this.log.join("\n")}`));
      });
      proc.once("error", (error) => {
        clearTimeout(timer);
        reject(new Error(`cannot start ${bin}: ${error.message}`));
      });
    }).catch((error) => {
      this.proc = null;
      throw error;
    });
    this.port = port;
    return this;
  }

  /** SIGTERM (or `signal`) and wait for the exit. */
  async stop(signal = "SIGTERM") {
    const proc = this.proc;
    if (!proc) return;
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGCONT");  // a stopped process cannot act on SIGTERM
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await this.exited;
      clearTimeout(timer);
    }
    this.proc = null;
  }

  /** Sends a signal without waiting (SIGSTOP, SIGCONT). */
  signal(name) {
    this.proc?.kill(name);
  }

  /** Stops, then starts again on the same port and data dir. */
  async restart() {
    await this.stop();
    await this.start();
  }

  /** Stops and removes the data dir it made. */
  async dispose() {
    await this.stop();
    if (this.ownsDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export async function startServer(options) {
  return new AgentwireServer(options).start();
}
