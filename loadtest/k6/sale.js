// A flash sale in k6: `k6 run -e SCENARIO=smoke sale.js` (service URLs: -e USER_URL=... etc.).
// The scenario comes from loadtest/scenarios.json, the definition the Python crowd reads too.
import { check, sleep } from "k6";
import { Counter, Trend } from "k6/metrics";
import ws from "k6/ws";

import { SaleApi } from "./lib/api.js";
import { STEPS, buildOptions, pickBehaviour, stepMetric, waitsOnWebSocket } from "./lib/options.js";
import { placeOf } from "./lib/place.js";

const SCENARIOS = JSON.parse(open("../scenarios.json"));
const NAME = __ENV.SCENARIO || "smoke";
const SCENARIO = SCENARIOS[NAME];
if (!SCENARIO) throw new Error(`no scenario ${NAME}; known: ${Object.keys(SCENARIOS).join(", ")}`);

const URLS = {
  user: __ENV.USER_URL || "http://127.0.0.1:8001",
  queue: __ENV.QUEUE_URL || "http://127.0.0.1:8002",
  event: __ENV.EVENT_URL || "http://127.0.0.1:8003",
  seat: __ENV.SEAT_URL || "http://127.0.0.1:8004",
  reservation: __ENV.RESERVATION_URL || "http://127.0.0.1:8005",
};
const api = new SaleApi(URLS, SCENARIO.event_id);

export const options = buildOptions(SCENARIO);

const stepTrends = {};
for (const step of STEPS) stepTrends[step] = new Trend(stepMetric(step), true);
const outcomes = new Counter("outcomes");

function timed(step, action) {
  const started = Date.now();
  const result = action();
  stepTrends[step].add(Date.now() - started);
  return result;
}

function waitByPolling(token, deadline) {
  while (Date.now() < deadline) {
    const reply = api.place(token);
    if (reply.status === 200) {
      const place = placeOf(reply.json());
      if (place.state !== "waiting") return place;
    }
    sleep(1);
  }
  return { state: "timed_out" };
}

function waitOnSocket(token, deadline) {
  let place = { state: "timed_out" };
  ws.connect(api.waitingSocket(token), {}, (socket) => {
    socket.on("message", (text) => {
      const message = placeOf(JSON.parse(text));
      if (message.state !== "waiting") {
        place = message;
        socket.close();
      }
    });
    socket.setTimeout(() => socket.close(), Math.max(deadline - Date.now(), 1));
  });
  return place;
}

// Login tokens are Ed25519 (EdDSA) JWTs, which k6 cannot sign (its WebCrypto has no Ed25519:
// grafana/k6#4263); minting them here would give every request a 401.
if (SCENARIO.login === "minted") {
  throw new Error(`scenario ${NAME} mints login tokens (EdDSA), which k6 cannot sign: run it with the Python crowd (python -m loadtest), or give it "login": "api"`);
}

function signIn() {
  const email = `k6-${__VU}-${__ITER}-${Date.now()}@load.example.org`;
  const password = "load-test-password-1";
  api.signUp(email, password);
  return api.login(email, password);
}

function record(outcome) {
  outcomes.add(1, { outcome: outcome });
}

export default function () {
  const deadline = Date.now() + SCENARIO.time_limit_seconds * 1000;
  const token = signIn();
  if (!token) return record("sign_in_failed");
  const joined = timed("join", () => api.join(token));
  if (!check(joined, { "joined the queue": (r) => r.status === 200 })) return record("join_failed");
  const first = placeOf(joined.json());
  const place =
    first.state !== "waiting"
      ? first
      : timed("admit", () => (waitsOnWebSocket(SCENARIO, Math.random()) ? waitOnSocket(token, deadline) : waitByPolling(token, deadline)));
  if (place.state !== "admitted") return record(place.state);
  const behaviour = pickBehaviour(SCENARIO.behaviour, Math.random());
  if (behaviour === "abandon") return record("abandoned");
  const seats = api.freeSeats(token).slice(0, SCENARIO.seats_per_buyer);
  if (seats.length === 0) return record("sold_out");
  const held = timed("hold", () => api.hold(token, place.admission_token, seats));
  if (held.status !== 201 && held.status !== 200) return record("hold_refused");
  const reservationId = held.json("id");
  const started = Date.now();
  while (Date.now() < deadline) {
    const status = api.reservation(token, reservationId).json("status");
    if (status !== "PENDING") {
      stepTrends.confirm.add(Date.now() - started);
      return record(status === "CONFIRMED" ? "bought" : status === "FAILED" ? "payment_failed" : status.toLowerCase());
    }
  }
  return record("confirm_timed_out");
}

export function handleSummary(data) {
  const lines = [`scenario ${NAME}`];
  for (const [name, metric] of Object.entries(data.metrics)) {
    if (metric.thresholds) {
      for (const [expression, verdict] of Object.entries(metric.thresholds)) {
        lines.push(`${verdict.ok ? "ok  " : "FAIL"} ${name} ${expression}`);
      }
    }
  }
  const out = {};
  out[`results/${NAME}/k6-summary.json`] = JSON.stringify(data, null, 1);
  out.stdout = lines.join("\n") + "\n";
  return out;
}
