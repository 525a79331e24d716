// A waiting-room status (HTTP or WebSocket) as the crowd reads it: the twin of place_from in
// loadtest/crowd/client.py. The crowd leaves once the sale is sold out.
export function placeOf(body) {
  let state = "closed";
  if (body.type === "admitted") state = "admitted";
  else if (body.type === "sold_out" || body.sold_out) state = "sold_out";
  else if (body.type === "position" || body.type === "prequeue") state = "waiting";
  return {
    state: state,
    position: body.position === undefined ? null : body.position,
    admission_token: body.type === "admitted" ? String(body.token) : null,
  };
}
