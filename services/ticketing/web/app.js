// The waiting room page: log in or sign up, join, watch the position, pick seats, pay, see the ticket.
// Service addresses come from the query string (?sale=...&user=...&seats=...&reservation=...)
// and default to this page's origin (behind one ingress every service shares it).
"use strict";

const params = new URLSearchParams(location.search);
const sale = params.get("sale") || "spring-concert";
const api = {
  queue: params.get("queue") || location.origin,
  user: params.get("user") || location.origin,
  seats: params.get("seats") || location.origin,
  reservation: params.get("reservation") || location.origin,
};
// The longest the reservation service waits before it answers a read of a pending reservation.
const RESERVATION_WAIT_SECONDS = 10;
const $ = (id) => document.getElementById(id);
const state = { token: null, admission: null, chosen: new Set(), reservation: null };

function show(step) {
  for (const id of ["login-step", "queue-step", "seats-step", "pay-step", "ticket-step"]) {
    $(id).hidden = id !== step;
  }
}

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

async function call(base, path, options = {}) {
  const headers = { "Content-Type": "application/json", ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch(base + path, { ...options, headers });
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new Error((body && body.detail) || `${response.status} ${response.statusText}`);
  return body;
}

async function login(event) {
  event.preventDefault();
  try {
    useToken(await logIn());
  } catch (error) {
    notice(`Login failed: ${error.message}`);
  }
}

async function signUp() {
  if (!$("login-form").reportValidity()) return;
  try {
    await call(api.user, "/users", { method: "POST", body: JSON.stringify(credentials()) });
    useToken(await logIn());
  } catch (error) {
    notice(`Sign-up failed: ${error.message}`);
  }
}

function credentials() {
  return { email: $("email").value, password: $("password").value };
}

async function logIn() {
  const body = await call(api.user, "/auth/login", { method: "POST", body: JSON.stringify(credentials()) });
  return body.access_token;
}

function useToken(token) {
  state.token = token;
  sessionStorage.setItem("ticketing-token", token);
  notice("");
  show("queue-step");
}

function join() {
  $("join").disabled = true;
  const url = new URL(`/sales/${encodeURIComponent(sale)}/queue/ws`, api.queue);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("access_token", state.token);
  const socket = new WebSocket(url);
  socket.onmessage = (event) => onQueueMessage(JSON.parse(event.data));
  socket.onclose = (event) => {
    if (event.code >= 4400) notice(`Not in line: ${event.reason}`);
    if (!state.admission) $("join").disabled = false;
  };
}

function onQueueMessage(message) {
  if (message.message !== undefined) notice(message.message);
  if (message.type === "sold_out") {
    $("sold-out").textContent = message.notice;
    $("sold-out").hidden = false;
    return;
  }
  $("waiting").hidden = false;
  if (message.type === "position") {
    $("prequeue").hidden = true;
    $("position").textContent = message.position;
    $("ahead").textContent = message.ahead;
    $("eta").textContent = message.eta_seconds == null ? "unknown" : formatSeconds(message.eta_seconds);
    $("in-line").textContent = message.waiting;
    $("rate").textContent = message.rate;
  } else if (message.type === "prequeue") {
    $("prequeue").hidden = false;
    $("opens-at").textContent = new Date(message.opens_at).toLocaleString();
  } else if (message.type === "admitted") {
    state.admission = message.token;
    show("seats-step");
    loadSeats();
  }
}

function formatSeconds(seconds) {
  return seconds < 90 ? `${Math.ceil(seconds)} s` : `${Math.ceil(seconds / 60)} min`;
}

async function loadSeats() {
  try {
    const seats = await call(api.seats, `/events/${encodeURIComponent(sale)}/seats`);
    const list = Array.isArray(seats) ? seats : seats.seats || [];
    for (const seat of list) {
      const button = document.createElement("button");
      const id = seat.id;
      button.textContent = id;
      button.disabled = seat.state !== undefined && seat.state !== "free";
      button.onclick = () => toggleSeat(id, button);
      $("seat-map").append(button);
    }
  } catch (error) {
    $("admitted").textContent = `You are admitted; the seat map is unavailable here (${error.message}).`;
  }
}

function toggleSeat(id, button) {
  if (state.chosen.has(id)) state.chosen.delete(id);
  else if (state.chosen.size < 4) state.chosen.add(id);
  button.classList.toggle("chosen", state.chosen.has(id));
  $("reserve").disabled = state.chosen.size === 0;
}

async function reserve() {
  try {
    state.reservation = await call(api.reservation, `/events/${encodeURIComponent(sale)}/reservations`, {
      method: "POST",
      headers: { "X-Admission-Token": state.admission },
      body: JSON.stringify({ seat_ids: [...state.chosen] }),
    });
    $("held").textContent = [...state.chosen].join(", ");
    show("pay-step");
  } catch (error) {
    notice(`Could not hold the seats: ${error.message}`);
  }
}

async function pay() {
  // Payment runs behind Kafka: the reservation becomes CONFIRMED once it is paid.
  $("pay").disabled = true;
  $("paying").hidden = false;
  // Each read waits on the server (up to 10 s) and is answered as soon as payment settles it.
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline) {
    try {
      const reservation = await call(
        api.reservation,
        `/reservations/${state.reservation.id}?wait_seconds=${RESERVATION_WAIT_SECONDS}`,
      );
      if (["CONFIRMED", "FAILED", "EXPIRED", "CANCELLED"].includes(reservation.status)) {
        showOutcome(reservation);
        return;
      }
    } catch (error) {
      notice(`Checking the payment: ${error.message}; trying again.`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  notice("Payment is taking longer than expected; your reservation is kept.");
}

function showOutcome(reservation) {
  $("paying").hidden = true;
  if (reservation.status !== "CONFIRMED") {
    notice(`Your reservation is ${reservation.status.toLowerCase()}: the seats were not sold to you.`);
    return;
  }
  $("ticket-status").textContent = "Confirmed";
  $("ticket-event").textContent = reservation.event_id;
  $("ticket-seats").textContent = reservation.seat_ids.join(", ");
  $("ticket-id").textContent = reservation.id;
  show("ticket-step");
}

$("login-form").addEventListener("submit", login);
$("sign-up").addEventListener("click", signUp);
$("join").addEventListener("click", join);
$("reserve").addEventListener("click", reserve);
$("pay").addEventListener("click", pay);
$("sale-name").textContent = sale;

// A token handed over in the fragment (#token=...) or kept from earlier skips the login form.
const handed = new URLSearchParams(location.hash.slice(1)).get("token");
const kept = handed || sessionStorage.getItem("ticketing-token");
if (kept) useToken(kept);
else show("login-step");
