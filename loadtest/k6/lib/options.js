// k6 options and buyer behaviour derived from one scenario of loadtest/scenarios.json.
// Pure functions with no k6 imports, so node can load them in the Python test suite.

export const STEPS = ["join", "admit", "hold", "confirm"];

export function stepMetric(step) {
  return `step_${step}`;
}

export function buildOptions(scenario) {
  const thresholds = {
    http_req_failed: [`rate<${scenario.thresholds.error_rate}`],
  };
  for (const step of STEPS) {
    const bound = scenario.thresholds.latency_ms[step];
    thresholds[stepMetric(step)] = [`p(95)<${bound.p95}`, `p(99)<${bound.p99}`];
  }
  const peakRate = Math.max(scenario.arrival.start_rate, ...scenario.arrival.stages.map((s) => s[1]));
  // Every arriving person is one iteration that lives until admitted and done, so a VU is
  // busy for about as long as people wait: size the pool for the whole crowd.
  return {
    scenarios: {
      buyers: {
        executor: "ramping-arrival-rate",
        startRate: scenario.arrival.start_rate,
        timeUnit: "1s",
        preAllocatedVUs: Math.ceil(peakRate * 2),
        maxVUs: totalUsers(scenario),
        stages: scenario.arrival.stages.map(([seconds, target]) => ({
          duration: `${seconds}s`,
          target: target,
        })),
        gracefulStop: `${scenario.time_limit_seconds}s`,
      },
    },
    thresholds: thresholds,
  };
}

export function totalUsers(scenario) {
  let total = 0;
  let rate = scenario.arrival.start_rate;
  for (const [seconds, target] of scenario.arrival.stages) {
    total += ((rate + target) / 2) * seconds;
    rate = target;
  }
  return Math.round(total);
}

// What an admitted buyer does, from one roll in [0, 1): the same cut as loadtest/crowd/behaviour.py.
// Payment runs by itself once seats are held; declines come from the payment service's gateway.
export function pickBehaviour(behaviour, roll) {
  return roll < behaviour.abandon_rate ? "abandon" : "buy";
}

export function waitsOnWebSocket(scenario, roll) {
  return roll < scenario.websocket_share;
}
