// The console's shell: sign-in, the top bar, and routing on the path under /console/.
import { render, useEffect, useState } from "../vendor/preact-htm.js";
import { ApiError, get, onSignedOut, token } from "./api.js";
import { AdminPage } from "./admin.js";
import { EndpointPage } from "./endpoint.js";
import { EndpointList } from "./endpoints.js";
import { GardenPage, ModelList, ModelPage } from "./models.js";
import { ErrorBox, html, Link, Loading, navigate, useLocation } from "./ui.js";

const ME = "/api/2.0/preview/scim/v2/Me";

function SignIn({ onSignedIn, reason }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState(reason ?? null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    token.set(value.trim());
    try {
      onSignedIn(await get(ME));
    } catch (e) {
      token.clear();
      setError(
        e instanceof ApiError && e.status === 401
          ? new ApiError(401, "UNAUTHENTICATED", "That token is not valid: check it, or create one.")
          : e,
      );
      setBusy(false);
    }
  };
  return html`<main class="signin">
    <form onSubmit=${submit} aria-labelledby="signin-title">
      <h1 id="signin-title">berth</h1>
      <p class="muted">Sign in with a berth token. <code>berth tokens create</code> makes one;
        the first start wrote the admin's to <code>~/.berth/admin-token</code>.</p>
      <label for="token">Token</label>
      <input id="token" name="token" type="password" autocomplete="current-password" required
        value=${value} onInput=${(e) => setValue(e.target.value)} autofocus />
      <${ErrorBox} error=${error} />
      <button class="primary" type="submit" disabled=${busy || !value.trim()}>Sign in</button>
    </form>
  </main>`;
}

function route(path, me) {
  const parts = path.replace(/^\/console\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [section, name] = parts;
  if (!section || section === "endpoints") {
    return name ? html`<${EndpointPage} name=${name} me=${me} />` : html`<${EndpointList} />`;
  }
  if (section === "models") {
    return name ? html`<${ModelPage} name=${name} />` : html`<${ModelList} />`;
  }
  if (section === "garden") return html`<${GardenPage} />`;
  if (section === "admin") return html`<${AdminPage} me=${me} />`;
  return html`<main><h1>Not found</h1><p>No page at ${path}. <${Link} href="/console/">
    Endpoints</${Link}></p></main>`;
}

function App() {
  const { path } = useLocation();
  const [me, setMe] = useState(undefined);
  const [reason, setReason] = useState(null);
  useEffect(() => {
    if (!token.get()) {
      setMe(null);
      return;
    }
    get(ME).then(setMe, (e) => {
      token.clear();
      setMe(null);
      if (e.status !== 401) setReason(e);
    });
  }, []);
  useEffect(
    () =>
      onSignedOut(() => {
        token.clear();
        setReason(new ApiError(401, "UNAUTHENTICATED", "Your token is no longer valid: sign in again."));
        setMe(null);
      }),
    [],
  );
  if (me === undefined) return html`<${Loading} what="berth" />`;
  if (me === null) return html`<${SignIn} reason=${reason} onSignedIn=${(user) => { setReason(null); setMe(user); }} />`;
  const isAdmin = (me.groups ?? []).some((g) => g.display === "admins");
  const section = path.replace(/^\/console\/?/, "").split("/")[0] || "endpoints";
  const signOut = () => {
    token.clear();
    setMe(null);
    navigate("/console/");
  };
  const nav = [
    ["endpoints", "Endpoints"],
    ["models", "Models"],
    ["garden", "Model garden"],
    ...(isAdmin ? [["admin", "Admin"]] : []),
  ];
  return html`<div class="shell">
    <header class="topbar">
      <${Link} href="/console/" class="brand">berth</${Link}>
      <nav aria-label="Sections">
        ${nav.map(
          ([id, label]) => html`<${Link}
            href=${`/console/${id}`}
            aria-current=${section === id ? "page" : undefined}
            class=${section === id ? "active" : ""}>${label}</${Link}>`,
        )}
      </nav>
      <span class="me" title=${me.userName}>${me.displayName || me.userName}</span>
      <button class="link" onClick=${signOut}>Sign out</button>
    </header>
    ${route(path, { ...me, isAdmin })}
  </div>`;
}

render(html`<${App} />`, document.getElementById("app"));
