// The live seat map page's script (GET /trains/{id}/map). It polls
// map.json every POLL_MS, draws each coach seat by seat (or, on a train
// without coaches, its legs as bars), works out every seat's state for the
// journey and class picked on the page, and drives the holds API for a
// buyer: pick seats, Hold, then Confirm or Release. Every address it uses is
// relative to the page, so it talks to this service only.
"use strict";

(() => {
  /** How often the page asks for the train (the service answers from a
   *  snapshot at most 250 ms old, shared by every open page). */
  const POLL_MS = 500;
  /** In a tab nobody looks at. */
  const HIDDEN_POLL_MS = 5000;
  /** How long the page's own change (a hold, a confirm, a release) is shown
   *  over snapshots taken before it. */
  const EXPECT_MS = 2000;
  /** Seat ids one hold may name. */
  const MAX_PICK = 10;

  const $ = (id) => document.getElementById(id);
  const el = (tag, props = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name === "role" || name.startsWith("data-") || name.startsWith("aria-")) node.setAttribute(name, value);
      else node[name] = value;
    }
    for (const child of children) node.append(child);
    return node;
  };

  const match = location.pathname.match(/\/trains\/([^/]+)\/map$/);
  const trainId = match ? decodeURIComponent(match[1]) : "";
  const identities = document.body.dataset.identities === "on";
  const query = new URLSearchParams(location.search);

  const page = {
    snap: null, // the last map.json
    offset: 0, // Redis's clock minus ours, in ms
    structure: "", // the stations and coaches the page was drawn for
    seats: new Map(), // seat id -> {id, button, coach, cls, sold, held}
    coaches: [], // [{coach, cls, section, figures, entries: [seat entries in map.json order]}]
    selected: new Set(), // seat ids picked, in order
    hold: null, // {id, seatIds, cls, from, to, deadline, ttl}
    mine: new Map(), // seat id -> "hold" | "reservation": this page's own
    expect: new Map(), // seat id -> {state, until}: this page's own last change
    polling: false,
    busy: false, // a hold, confirm or release is on its way
    timer: 0,
    initial: { from: query.get("from"), to: query.get("to"), cls: query.get("class") },
  };

  // --- polling ------------------------------------------------------------------

  async function poll() {
    clearTimeout(page.timer);
    if (page.polling) return;
    page.polling = true;
    let delay = document.hidden ? HIDDEN_POLL_MS : POLL_MS;
    try {
      const r = await fetch("map.json", { cache: "no-store", headers: { Accept: "application/json" } });
      if (r.status === 404) {
        live("lost", `Train ${trainId} does not exist (any more).`);
        delay = HIDDEN_POLL_MS;
      } else if (!r.ok) {
        const body = await r.json().catch(() => ({}));
        live("lost", `The service answered ${r.status} ${body.error || ""}; retrying…`);
      } else {
        receive(await r.json());
      }
    } catch (e) {
      live("lost", `Connection lost (${e.message}); retrying…`);
    } finally {
      page.polling = false;
      page.timer = setTimeout(poll, delay);
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll();
  });

  function live(kind, text) {
    $("live").dataset.live = kind;
    $("live-text").textContent = text;
  }

  function receive(snap) {
    page.offset = snap.at_ms - Date.now();
    const structure = JSON.stringify([
      snap.stations,
      snap.coaches && snap.coaches.map((c) => [c.coach, c.class, c.rows, c.layout]),
    ]);
    if (structure !== page.structure) {
      build(snap);
      page.structure = structure;
    }
    page.snap = snap;
    for (const [k, coach] of (snap.coaches || []).entries()) {
      const drawn = page.coaches[k];
      coach.sold.forEach((hex, i) => {
        drawn.entries[i].sold = legs(hex);
        drawn.entries[i].held = legs(coach.held[i]);
      });
    }
    const at = new Date(snap.at_ms).toLocaleTimeString();
    live("live", `Live · updated ${at}` + (snap.locked ? " · sales frozen (the train is locked)" : ""));
    render();
  }

  /** A hexadecimal set of legs, as a BigInt (trains have up to 63 legs). */
  const legs = (hex) => (hex === "0" ? 0n : BigInt("0x" + hex));

  // --- drawing the train once ------------------------------------------------------

  function build(snap) {
    $("train-id").textContent = trainId;
    document.title = `Seat map · ${trainId}`;
    const stations = snap.stations;
    $("route").textContent = stations
      ? `${stations.join(" → ")} · ${snap.capacity} seats`
      : `No stations: the whole route is one leg · ${snap.capacity} seats`;

    // Journey pickers.
    const from = $("from"), to = $("to");
    const before = page.snap && page.snap.stations;
    const named = (select) => (before && select.value ? before[Number(select.value)] : null);
    const keepFrom = named(from) || page.initial.from, keepTo = named(to) || page.initial.to;
    from.replaceChildren(), to.replaceChildren();
    if (stations) {
      stations.slice(0, -1).forEach((s, k) => from.append(el("option", { value: String(k), text: s })));
      stations.slice(1).forEach((s, k) => to.append(el("option", { value: String(k + 1), text: s })));
      const at = (name, fallback) => {
        const k = stations.indexOf(name);
        return k >= 0 ? k : fallback;
      };
      from.value = String(Math.min(at(keepFrom, 0), stations.length - 2));
      to.value = String(Math.max(at(keepTo, stations.length - 1), Number(from.value) + 1));
    }
    from.parentElement.hidden = to.parentElement.hidden = !stations;

    // Class filter.
    const classes = [...new Set((snap.coaches || []).map((c) => c.class))];
    const picker = $("class");
    const keepClass = picker.value || page.initial.cls || "";
    picker.replaceChildren(el("option", { value: "", text: "All classes" }));
    classes.forEach((c) => picker.append(el("option", { value: c, text: c })));
    picker.value = classes.includes(keepClass) ? keepClass : "";
    picker.parentElement.hidden = !snap.coaches;
    const note = $("note");
    note.hidden = !(keepClass && !classes.includes(keepClass));
    page.initial = {};
    if (!note.hidden) {
      note.textContent = snap.coaches
        ? `This train has no class “${keepClass}”: every class is shown.`
        : `This train's seats are not numbered, so it has no classes: every seat is shown.`;
    }

    // Coaches, seat by seat.
    page.seats.clear();
    page.coaches = [];
    const coaches = $("coaches");
    coaches.replaceChildren();
    for (const coach of snap.coaches || []) coaches.append(drawCoach(coach));
    coaches.hidden = !snap.coaches;
    $("legs").hidden = !!snap.coaches;
    $("picking").hidden = !snap.coaches;
    if (!snap.coaches) say("This train's seats are not numbered: there are no seats to pick here.");
    $("token-row").hidden = !identities || !snap.coaches;
    $("counts").hidden = !snap.coaches;
    $("journey-free").hidden = !!snap.coaches;
    document.body.dataset.numbered = String(!!snap.coaches);
  }

  function drawCoach(coach) {
    const letters = [...coach.layout].filter((c) => c !== "_");
    const title = el("h2", {}, `Coach ${coach.coach}`, el("span", { class: "class", text: `${coach.class} class` }));
    const figures = el("span", { class: "figures" });
    title.append(figures);
    const plan = el("div", { class: "plan", role: "group", "aria-label": `Coach ${coach.coach}, ${coach.class} class` });
    plan.style.gridTemplateColumns = `auto repeat(${coach.rows}, 40px)`;
    plan.append(el("span", { "aria-hidden": "true" }));
    for (let row = 1; row <= coach.rows; row++) {
      plan.append(el("span", { class: "rowno", text: String(row), "aria-hidden": "true" }));
    }
    const drawn = { coach: coach.coach, cls: coach.class, figures, entries: [], section: null };
    const buttons = [];
    let li = 0;
    for (const c of coach.layout) {
      if (c === "_") {
        plan.append(el("div", { class: "aisle", "aria-hidden": "true" }));
        plan.lastChild.style.gridColumn = "1 / -1";
        continue;
      }
      plan.append(el("span", { class: "letter", text: c, "aria-hidden": "true" }));
      for (let row = 1; row <= coach.rows; row++) {
        const id = `${coach.coach}-${row}${c}`;
        const button = el("button", { type: "button", class: "seat", tabIndex: -1, "data-seat": id },
          el("span", { class: "label", text: `${row}${c}` }));
        button.dataset.row = String(row);
        button.dataset.letter = String(li);
        buttons.push(button);
        plan.append(button);
      }
      li++;
    }
    // map.json lists seats row by row; the plan draws them letter by letter.
    for (let row = 1; row <= coach.rows; row++) {
      letters.forEach((c, k) => {
        const button = buttons[k * coach.rows + (row - 1)];
        const entry = { id: button.dataset.seat, button, coach: coach.coach, cls: coach.class, sold: 0n, held: 0n, shown: "" };
        drawn.entries.push(entry);
        page.seats.set(entry.id, entry);
      });
    }
    if (buttons.length) buttons[0].tabIndex = 0;
    const section = el("section", { class: "coach", "data-class": coach.class },
      title, el("div", { class: "coach-body" }, plan));
    drawn.section = section;
    page.coaches.push(drawn);
    return section;
  }

  // --- a seat's state for the journey ---------------------------------------------

  function journey() {
    const stations = page.snap && page.snap.stations;
    if (!stations) return { a: 0, b: 1, from: null, to: null, text: "the whole route" };
    const a = Number($("from").value), b = Number($("to").value);
    return { a, b, from: stations[a], to: stations[b], text: `${stations[a]} → ${stations[b]}` };
  }

  const journeyMask = ({ a, b }) => ((1n << BigInt(b)) - 1n) ^ ((1n << BigInt(a)) - 1n);

  /** free, held or sold for the journey, with the page's own last change
   *  shown until a snapshot agrees with it (or EXPECT_MS have passed). */
  function shownState(entry, mask) {
    const actual = entry.sold & mask ? "sold" : entry.held & mask ? "held" : "free";
    const expected = page.expect.get(entry.id);
    if (!expected) return actual;
    if (expected.state === actual || Date.now() > expected.until) {
      page.expect.delete(entry.id);
      return actual;
    }
    return expected.state;
  }

  function render() {
    if (!page.snap) return;
    const j = journey();
    if (!page.snap.coaches) return renderLegs(j);
    const mask = journeyMask(j);
    const filter = $("class").value;
    const counts = new Map();
    for (const drawn of page.coaches) {
      drawn.section.hidden = !!filter && drawn.cls !== filter;
      const mine = { free: 0, held: 0, sold: 0 };
      for (const entry of drawn.entries) {
        const state = shownState(entry, mask);
        entry.shown = state;
        mine[state]++;
        paint(entry, state);
      }
      drawn.figures.textContent = `${mine.free} free · ${mine.held} held · ${mine.sold} sold`;
      const total = counts.get(drawn.cls) || { free: 0, held: 0, sold: 0 };
      for (const k of ["free", "held", "sold"]) total[k] += mine[k];
      counts.set(drawn.cls, total);
    }
    renderCounts(counts, j);
    renderSelection();
  }

  function paint(entry, state) {
    const selected = page.selected.has(entry.id);
    const mine = state !== "free" ? page.mine.get(entry.id) : undefined;
    let label = `${entry.id}, ${state}`;
    if (selected) label = state === "free" ? `${entry.id}, selected` : `${entry.id}, ${state}, selected (taken meanwhile)`;
    else if (mine === "hold") label += " (your hold)";
    else if (mine === "reservation") label += " (yours)";
    const b = entry.button;
    if (b.dataset.state !== state) b.dataset.state = state;
    if (b.dataset.selected !== String(selected)) b.dataset.selected = String(selected);
    if (b.dataset.mine !== String(!!mine)) b.dataset.mine = String(!!mine);
    if (b.getAttribute("aria-label") !== label) {
      b.setAttribute("aria-label", label);
      b.title = `${label} · ${entry.cls} class`;
    }
    b.setAttribute("aria-pressed", String(selected));
    const unavailable = state !== "free" && !selected;
    b.setAttribute("aria-disabled", String(unavailable));
  }

  function renderCounts(counts, j) {
    $("counts-caption").textContent = `Seats for ${j.text}`;
    const body = $("counts").tBodies[0];
    body.replaceChildren();
    const all = { free: 0, held: 0, sold: 0 };
    for (const [cls, c] of counts) {
      body.append(el("tr", {}, el("th", { scope: "row", text: cls }), ...["free", "held", "sold"].map((k) =>
        el("td", { text: String(c[k]) })), el("td", { text: String(c.free + c.held + c.sold) })));
      for (const k of ["free", "held", "sold"]) all[k] += c[k];
    }
    const foot = $("counts").tFoot || $("counts").createTFoot();
    foot.replaceChildren(el("tr", {}, el("td", { text: "all" }), ...["free", "held", "sold"].map((k) =>
      el("td", { text: String(all[k]) })), el("td", { text: String(all.free + all.held + all.sold) })));
  }

  /** A train without coaches: one bar per leg, sold, held and free. */
  function renderLegs(j) {
    const snap = page.snap;
    const bars = $("leg-bars");
    bars.replaceChildren();
    const capacity = Math.max(1, snap.capacity);
    let free = Infinity;
    snap.legs.forEach((leg, k) => {
      const name = leg.from ? `${leg.from} → ${leg.to}` : "The whole route";
      const inJourney = k >= j.a && k < j.b;
      if (inJourney) free = Math.min(free, leg.remaining);
      const text = `${leg.sold} sold · ${leg.held} held · ${leg.remaining} free of ${snap.capacity}`;
      const bar = el("div", { class: "bar", role: "img", "aria-label": `${name}: ${text}`, title: `${name}: ${text}` });
      for (const part of ["sold", "held", "free"]) {
        const n = part === "free" ? leg.remaining : leg[part];
        const span = el("span", { class: part });
        span.style.width = `${(100 * Math.max(0, n)) / capacity}%`;
        bar.append(span);
      }
      bars.append(el("li", { "data-journey": String(inJourney) },
        el("div", { class: "leg-name" }, name, el("small", { text })), bar));
    });
    $("journey-free").textContent = `${free === Infinity ? snap.remaining : free} of ${snap.capacity} seats free for ${j.text} ` +
      `(the fewest free on any of its legs); ${snap.sold} sold and ${snap.held} held on the whole train.`;
  }

  // --- picking seats ------------------------------------------------------------------

  function toggle(id) {
    const entry = page.seats.get(id);
    if (!entry) return;
    if (page.selected.has(id)) {
      page.selected.delete(id);
      return render();
    }
    const state = entry.shown || "free";
    if (state !== "free") return say(`${id} is ${state} for ${journey().text}: pick a free seat.`, "error");
    if (page.hold) return say("Confirm or release your hold before picking more seats.", "error");
    if (page.selected.size >= MAX_PICK) return say(`One hold takes at most ${MAX_PICK} seats.`, "error");
    const other = [...page.selected].map((s) => page.seats.get(s)).find((e) => e && e.cls !== entry.cls);
    if (other) {
      return say(`${id} is ${entry.cls} class and your other seats are ${other.cls} class: one hold has seats of one class.`, "error");
    }
    page.selected.add(id);
    render();
  }

  function renderSelection() {
    const ids = [...page.selected];
    const selection = $("selection");
    if (ids.length) {
      selection.replaceChildren(`Selected for ${journey().text}: `, seatList(ids), ` (${ids.length} of at most ${MAX_PICK}).`);
    } else if (page.hold) {
      selection.textContent = "Confirm or release your hold before picking more seats.";
    } else {
      selection.textContent = `Pick up to ${MAX_PICK} free seats of one class on the map (click, or Enter or Space on a seat; arrow keys move between seats).`;
    }
    $("hold").disabled = !ids.length || !!page.hold || page.busy;
    $("clear").disabled = !ids.length;
  }

  $("coaches").addEventListener("click", (event) => {
    const button = event.target.closest("button.seat");
    if (button) toggle(button.dataset.seat);
  });

  // Arrow keys move between the seats of a coach (one seat per coach is in
  // the Tab order: the last one focused).
  $("coaches").addEventListener("keydown", (event) => {
    const button = event.target.closest("button.seat");
    if (!button) return;
    const plan = button.parentElement;
    let row = Number(button.dataset.row), letter = Number(button.dataset.letter);
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (event.key === "Home") row = 1;
    else if (event.key === "End") row = Infinity;
    else if (moves[event.key]) {
      row += moves[event.key][0];
      letter += moves[event.key][1];
    } else return;
    event.preventDefault();
    const seats = [...plan.querySelectorAll("button.seat")];
    const rows = Math.max(...seats.map((s) => Number(s.dataset.row)));
    row = Math.min(Math.max(row, 1), rows);
    const next = seats.find((s) => Number(s.dataset.row) === row && Number(s.dataset.letter) === letter);
    if (next) next.focus();
  });

  $("coaches").addEventListener("focusin", (event) => {
    const button = event.target.closest("button.seat");
    if (!button) return;
    for (const other of button.parentElement.querySelectorAll('button.seat[tabindex="0"]')) other.tabIndex = -1;
    button.tabIndex = 0;
  });

  $("clear").addEventListener("click", () => {
    page.selected.clear();
    say("");
    render();
  });

  function journeyChanged() {
    const from = $("from"), to = $("to");
    if (page.snap && page.snap.stations && Number(from.value) >= Number(to.value)) {
      to.value = String(Math.min(Number(from.value) + 1, page.snap.stations.length - 1));
    }
    if (page.selected.size) {
      page.selected.clear();
      say("The journey changed: your picks were cleared (a seat free on one journey may not be on another).");
    }
    const j = journey(), params = new URLSearchParams();
    if (j.from) {
      params.set("from", j.from);
      params.set("to", j.to);
    }
    if ($("class").value) params.set("class", $("class").value);
    const search = params.toString();
    history.replaceState(null, "", search ? `?${search}` : location.pathname);
    $("note").hidden = true;
    render();
  }
  for (const id of ["from", "to", "class"]) $(id).addEventListener("change", journeyChanged);

  // --- holding, confirming, releasing ------------------------------------------------

  /** One call of the API, relative to this page: {status, body}, status 0
   *  when the service could not be reached. */
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const token = $("token").value.trim();
    if (identities && token) headers.Authorization = `Bearer ${token}`;
    try {
      const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: r.status, body: await r.json().catch(() => ({})) };
    } catch (e) {
      return { status: 0, body: { detail: e.message } };
    }
  }

  function busy(on) {
    page.busy = on;
    for (const id of ["confirm", "release"]) $(id).disabled = on;
    renderSelection();
  }

  const list = (ids) => ids.join(", ");

  /** Seat ids as text that does not break inside an id. */
  function seatList(ids) {
    const out = document.createDocumentFragment();
    ids.forEach((id, k) => {
      if (k) out.append(", ");
      out.append(el("span", { class: "seat-id", text: id }));
    });
    return out;
  }

  $("hold").addEventListener("click", async () => {
    const ids = [...page.selected];
    if (!ids.length || page.hold) return;
    const j = journey(), ttl = Number($("ttl").value);
    const body = { seat_ids: ids, ttl_ms: ttl };
    if (j.from) {
      body.from = j.from;
      body.to = j.to;
    }
    busy(true);
    say(`Holding ${list(ids)}…`);
    const sent = Date.now();
    const r = await api("POST", "holds", body);
    busy(false);
    if (r.status !== 201) return refused(r, "hold", ids);
    const seatIds = r.body.seat_ids || ids;
    page.hold = { id: r.body.hold_id, seatIds, cls: r.body.class, text: j.text, deadline: sent + ttl, ttl };
    page.selected.clear();
    expect(seatIds, "held", "hold");
    const until = new Date(sent + ttl).toLocaleTimeString();
    say(`Held ${list(seatIds)} (${r.body.class} class, ${j.text}) until ${until}. Confirm to buy them, or release them.`, "ok");
    showHold();
  });

  $("confirm").addEventListener("click", async () => {
    const hold = page.hold;
    if (!hold) return;
    busy(true);
    const r = await api("POST", `holds/${encodeURIComponent(hold.id)}/confirm`);
    busy(false);
    if (r.status !== 200) return refused(r, "confirm", hold.seatIds);
    page.hold = null;
    expect(hold.seatIds, "sold", "reservation");
    say(`Confirmed: ${list(hold.seatIds)} are sold to you (${hold.text}); reservation ${r.body.reservation_id}.`, "ok");
    showHold();
  });

  $("release").addEventListener("click", async () => {
    const hold = page.hold;
    if (!hold) return;
    busy(true);
    const r = await api("DELETE", `holds/${encodeURIComponent(hold.id)}`);
    busy(false);
    if (r.status !== 200) return refused(r, "release", hold.seatIds);
    page.hold = null;
    for (const id of hold.seatIds) page.mine.delete(id);
    expect(hold.seatIds, "free");
    say(`Released ${list(hold.seatIds)}: they are back on sale.`, "ok");
    showHold();
  });

  /** The page's own change, shown until a snapshot has it too. */
  function expect(ids, state, mine) {
    const until = Date.now() + EXPECT_MS;
    for (const id of ids) {
      page.expect.set(id, { state, until });
      if (mine) page.mine.set(id, mine);
    }
    render();
  }

  /** A refusal, in words. */
  function refused(r, action, ids) {
    const e = r.body || {};
    const detail = e.detail ? ` (${e.detail})` : "";
    const dropHold = () => {
      if (page.hold) for (const id of page.hold.seatIds) page.mine.delete(id);
      page.hold = null;
      showHold();
    };
    let text;
    switch (r.status === 0 ? "network" : e.error || String(r.status)) {
      case "network":
        text = `Could not reach the service${detail}: nothing is known to have changed. Try again.`;
        break;
      case "seat_taken": {
        const taken = e.seat_ids || [];
        for (const id of taken) page.selected.delete(id);
        text = `Not held: seat${taken.length === 1 ? "" : "s"} ${list(taken)} ${taken.length === 1 ? "was" : "were"} taken by someone else meanwhile (no longer free for ${journey().text}). Nothing was held; pick other seats.`;
        break;
      }
      case "hold_expired":
        dropHold();
        text = `Your hold on ${list(ids)} expired before it was confirmed: the seats are back on sale, nothing was bought.`;
        break;
      case "unknown_hold":
        dropHold();
        text = `That hold no longer exists (released, confirmed or expired elsewhere): nothing was ${action === "confirm" ? "bought" : "changed"}.`;
        break;
      case "already_confirmed":
        dropHold();
        text = `That hold was already confirmed: the seats are yours.`;
        break;
      case "limit_reached":
        text = `Not held: a buyer may have ${e.limit} seats on this train, reserved plus held, and you already have ${e.used}.`;
        break;
      case "sold_out":
        text = `Not held: not enough seats left for ${journey().text}${detail}.`;
        break;
      case "unauthorized":
        text = identities
          ? `The service needs your bearer token (JWT) to ${action} seats: paste it in the field above${detail}.`
          : `The service refused the request as unauthorized${detail}.`;
        break;
      case "forbidden":
        text = `Not allowed${detail}.`;
        break;
      case "locked":
        text = `Sales on this train are frozen for now (it is locked): try again in ${Math.ceil((e.retry_after_ms || 1000) / 1000)} s.`;
        break;
      case "rate_limited":
        text = `Too many requests from you: try again in ${Math.ceil((e.retry_after_ms || 1000) / 1000)} s.`;
        break;
      case "unavailable":
        text = `The service cannot reach its database right now: the outcome is unknown. Try again in a moment.`;
        break;
      default:
        text = `Could not ${action} the seats: ${r.status} ${e.error || ""}${detail}.`;
    }
    say(text, "error");
    render();
  }

  function say(text, kind = "") {
    const m = $("message");
    m.textContent = text;
    m.dataset.kind = kind;
    m.setAttribute("role", kind === "error" ? "alert" : "status");
  }

  function showHold() {
    const hold = page.hold;
    $("hold-panel").hidden = !hold;
    if (hold) {
      $("hold-text").replaceChildren("Your hold: ", seatList(hold.seatIds), ` (${hold.cls} class, ${hold.text}).`);
      tick();
    }
    renderSelection();
  }

  /** The hold's countdown; at 0 the hold is gone (the service frees its
   *  seats by itself). */
  function tick() {
    const hold = page.hold;
    if (!hold) return;
    const left = hold.deadline - Date.now();
    if (left <= 0) {
      page.hold = null;
      for (const id of hold.seatIds) page.mine.delete(id);
      say(`Your hold on ${list(hold.seatIds)} expired: the seats are back on sale, nothing was bought.`, "error");
      showHold();
      render();
      return;
    }
    const s = Math.ceil(left / 1000);
    $("countdown").textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")} left to confirm`;
    $("hold-progress").value = left / hold.ttl;
  }
  setInterval(tick, 250);

  if (!trainId) {
    live("lost", "This page must be opened at /trains/{id}/map.");
  } else {
    $("train-id").textContent = trainId;
    poll();
  }
})();
