// The platform's API as k6 buyers call it: the twin of loadtest/crowd/client.py, keep them in step.
import http from "k6/http";

function bearer(token, extra) {
  return { headers: Object.assign({ Authorization: `Bearer ${token}`, "Content-Type": "application/json" }, extra || {}) };
}

function tagged(params, step) {
  params.tags = { step: step };
  return params;
}

export class SaleApi {
  constructor(urls, eventId) {
    this.urls = urls;
    this.eventId = eventId;
  }

  signUp(email, password) {
    const body = JSON.stringify({ email: email, password: password });
    return http.post(`${this.urls.user}/users`, body, { headers: { "Content-Type": "application/json" }, tags: { step: "sign_up" } });
  }

  login(email, password) {
    const body = JSON.stringify({ email: email, password: password });
    const reply = http.post(`${this.urls.user}/auth/login`, body, { headers: { "Content-Type": "application/json" }, tags: { step: "login" } });
    return reply.status === 200 ? reply.json("access_token") : null;
  }

  line() {
    return `${this.urls.queue}/sales/${this.eventId}/queue`;
  }

  join(token) {
    return http.post(this.line(), null, tagged(bearer(token), "join"));
  }

  place(token) {
    return http.get(this.line(), tagged(bearer(token), "poll"));
  }

  // Join and watch; browsers cannot set headers on a WebSocket, so the token is a query.
  waitingSocket(token) {
    return `${this.line().replace(/^http/, "ws")}/ws?access_token=${encodeURIComponent(token)}`;
  }

  freeSeats(token) {
    const reply = http.get(`${this.urls.seat}/events/${this.eventId}/seats/free`, tagged(bearer(token), "seats"));
    if (reply.status !== 200) return [];
    return reply.json("free").map(String);
  }

  // Payment then runs by itself over Kafka: there is no pay call.
  hold(token, admissionToken, seatIds) {
    const params = tagged(bearer(token, { "X-Admission-Token": admissionToken }), "hold");
    return http.post(`${this.urls.reservation}/events/${this.eventId}/reservations`, JSON.stringify({ seat_ids: seatIds }), params);
  }

  // Answered once payment settles the reservation, or after `waitSeconds` (at most 10).
  reservation(token, reservationId, waitSeconds = 10) {
    const url = `${this.urls.reservation}/reservations/${reservationId}?wait_seconds=${waitSeconds}`;
    return http.get(url, tagged(bearer(token), "confirm"));
  }
}
