/// `/docs`: a self-contained page that renders `/openapi.json` (no external scripts).
enum DocsPage {
    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>API documentation</title>
    <style>
      :root { --fg: #1d2330; --muted: #5b6474; --line: #dde2ea; --bg: #f6f8fb; --code: #eef1f6; }
      * { box-sizing: border-box; }
      body { margin: 0; font: 15px/1.5 system-ui, -apple-system, Segoe UI, Roboto, sans-serif; color: var(--fg); background: var(--bg); }
      main { max-width: 980px; margin: 0 auto; padding: 24px 20px 64px; }
      h1 { margin: 0 0 4px; font-size: 28px; } h2 { margin: 36px 0 12px; font-size: 21px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
      h3 { margin: 0 0 6px; font-size: 17px; } h4 { margin: 16px 0 6px; font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
      code, pre { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
      code { background: var(--code); padding: 1px 4px; border-radius: 4px; }
      pre { background: #1f2430; color: #e6e9ef; padding: 10px 12px; border-radius: 6px; overflow-x: auto; margin: 6px 0; }
      a { color: #2557c7; text-decoration: none; } a:hover { text-decoration: underline; }
      .version { color: var(--muted); font-size: 14px; } .muted, .desc, .lim { color: var(--muted); }
      .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin: 14px 0; }
      .head { display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
      .method { font-weight: 700; font-size: 12px; color: #fff; padding: 3px 8px; border-radius: 4px; min-width: 56px; text-align: center; }
      .m-get { background: #2f7d4f; } .m-post { background: #2557c7; } .m-put { background: #a86b00; } .m-delete { background: #b3261e; } .m-patch { background: #6b4fbb; }
      .path { font-weight: 600; background: none; font-size: 15px; } .summary { color: var(--muted); }
      .tag { font-size: 11px; border: 1px solid var(--line); border-radius: 10px; padding: 0 7px; color: var(--muted); }
      .tag.req { color: #b3261e; border-color: #f0c4c0; }
      table { border-collapse: collapse; width: 100%; font-size: 14px; }
      th, td { text-align: left; vertical-align: top; border-bottom: 1px solid var(--line); padding: 6px 8px; }
      th { font-size: 12px; color: var(--muted); font-weight: 600; }
      ul.fields { list-style: none; margin: 4px 0 4px 6px; padding-left: 14px; border-left: 2px solid var(--line); }
      ul.fields li { margin: 5px 0; } .fname { font-weight: 600; } .type { color: #6b4fbb; font-size: 13px; }
      .desc { font-size: 14px; } .lim { font-size: 13px; }
      .mt { font-size: 12px; color: var(--muted); margin-top: 6px; }
      details.resp { border-top: 1px solid var(--line); padding: 6px 0; } details.resp summary { cursor: pointer; }
      .status { font-weight: 700; font-family: ui-monospace, monospace; padding: 1px 6px; border-radius: 4px; }
      .s2 { background: #dff3e6; color: #1f6b3d; } .s4 { background: #fde9d9; color: #9a4a00; } .s5 { background: #fbdcdc; color: #9c1c1c; }
      .ex { font-size: 12px; color: var(--muted); margin-top: 8px; }
      nav ul { columns: 2; padding-left: 18px; margin: 6px 0; } nav li { font-size: 14px; }
      .error { color: #b3261e; }
    </style>
    </head>
    <body>
    <main id="app"><p class="muted">Loading /openapi.json ...</p></main>
    <script>
      let spec = {};
      const esc = (v) => String(v).split('&').join('&amp;').split('<').join('&lt;').split('>').join('&gt;').split('"').join('&quot;');
      const md = (s) => esc(s || '').split('`').map((part, i) => (i % 2 ? '<code>' + part + '</code>' : part)).join('');
      const refName = (o) => (o && o.$ref ? o.$ref.split('/').pop() : null);
      const schemaLink = (name) => '<a href="#schema-' + esc(name) + '">' + esc(name) + '</a>';
      function deref(o) {
        for (let i = 0; o && o.$ref && i < 20; i++) {
          let target = spec;
          for (const key of o.$ref.split('/').slice(1)) target = target ? target[key] : undefined;
          const siblings = Object.assign({}, o);
          delete siblings.$ref;
          o = Object.assign({}, target || {}, siblings);
        }
        return o || {};
      }
      function typeOf(s) {
        let types = s.type || (s.properties ? 'object' : 'any');
        types = Array.isArray(types) ? types : [types];
        const nullable = types.includes('null') || s.nullable === true;
        let label = types.filter((t) => t !== 'null').join(' | ') || 'null';
        if (label === 'array' && s.items) label = 'array of ' + (refName(s.items) || typeOf(deref(s.items)).label);
        if (label === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object') {
          label = 'map of ' + (refName(s.additionalProperties) || typeOf(deref(s.additionalProperties)).label);
        }
        if (s.format) label += ' (' + s.format + ')';
        return { label, nullable };
      }
      function constraints(s) {
        const c = [];
        if (s.default !== undefined) c.push('default ' + JSON.stringify(s.default));
        if (s.minimum !== undefined) c.push('min ' + s.minimum);
        if (s.maximum !== undefined) c.push('max ' + s.maximum);
        if (s.minLength !== undefined) c.push('min length ' + s.minLength);
        if (s.const !== undefined) c.push('always ' + JSON.stringify(s.const));
        if (Array.isArray(s.examples) && typeof s.examples[0] !== 'object') c.push('e.g. ' + JSON.stringify(s.examples[0]));
        return c.join(', ');
      }
      function typeLabel(p) {
        const name = refName(p);
        const s = deref(p);
        if (name) return schemaLink(name);
        if (s.items && refName(s.items)) return 'array of ' + schemaLink(refName(s.items));
        return esc(typeOf(s).label);
      }
      function field(name, p, required, seen) {
        const s = deref(p);
        const t = typeOf(s);
        const lim = constraints(s);
        let h = '<li><code class="fname">' + esc(name) + '</code> <span class="type">' + typeLabel(p) + '</span>';
        if (required) h += ' <span class="tag req">required</span>';
        if (t.nullable) h += ' <span class="tag">nullable</span>';
        if (s.enum) h += ' <span class="lim">one of ' + s.enum.map((v) => '<code>' + esc(JSON.stringify(v)) + '</code>').join(' ') + '</span>';
        if (lim) h += ' <span class="lim">(' + esc(lim) + ')</span>';
        if (s.description) h += '<div class="desc">' + md(s.description) + '</div>';
        return h + fields(p, seen) + '</li>';
      }
      function fields(p, seen) {
        const name = refName(p);
        if (name && seen.includes(name)) return '';
        const inner = name ? seen.concat([name]) : seen;
        const s = deref(p);
        if (s.items) return fields(s.items, inner);
        if (s.properties) {
          const req = s.required || [];
          return '<ul class="fields">' + Object.keys(s.properties).map((k) => field(k, s.properties[k], req.includes(k), inner)).join('') + '</ul>';
        }
        if (s.additionalProperties && typeof s.additionalProperties === 'object') {
          return '<ul class="fields">' + field('{name}', s.additionalProperties, false, inner) + '</ul>';
        }
        return '';
      }
      function example(title, value) {
        const text = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
        return '<div class="ex">' + title + '</div><pre>' + esc(text) + '</pre>';
      }
      function schemaBlock(p, withExample) {
        const s = deref(p);
        let h = '<div><span class="type">' + typeLabel(p) + '</span>' + (typeOf(s).nullable ? ' <span class="tag">nullable</span>' : '') + '</div>';
        if (!refName(p) && s.description) h += '<div class="desc">' + md(s.description) + '</div>';
        h += fields(p, []);
        if (withExample && s.example !== undefined) h += example('Example', s.example);
        return h;
      }
      function content(c) {
        return Object.keys(c || {}).map((type) => {
          const m = c[type];
          const named = m.examples || {};
          let h = '<div class="mt">' + esc(type) + '</div>';
          if (m.schema) h += schemaBlock(m.schema, m.example === undefined && !m.examples);
          if (m.example !== undefined) h += example('Example', m.example);
          for (const key of Object.keys(named)) {
            const e = deref(named[key]);
            h += example('Example <code>' + esc(key) + '</code>' + (e.summary ? ': ' + esc(e.summary) : ''), e.value);
          }
          return h;
        }).join('');
      }
      function params(list) {
        if (!list.length) return '';
        const rows = list.map((p0) => {
          const p = deref(p0);
          const lim = constraints(deref(p.schema || {}));
          return '<tr><td><code>' + esc(p.name) + '</code>' + (p.required ? ' <span class="tag req">required</span>' : '') + '</td><td>' + esc(p.in) +
            '</td><td class="type">' + typeLabel(p.schema || {}) + '</td><td>' + md(p.description) + (lim ? ' <span class="lim">(' + esc(lim) + ')</span>' : '') + '</td></tr>';
        });
        return '<h4>Parameters</h4><table><tr><th>Name</th><th>In</th><th>Type</th><th>Description</th></tr>' + rows.join('') + '</table>';
      }
      function responses(rs) {
        return '<h4>Responses</h4>' + Object.keys(rs || {}).map((code) => {
          const r = deref(rs[code]);
          const headers = Object.keys(r.headers || {}).map((k) => '<div class="lim">Header <code>' + esc(k) + '</code>: ' + md(deref(r.headers[k]).description) + '</div>').join('');
          return '<details class="resp"' + (code[0] === '2' ? ' open' : '') + '><summary><span class="status s' + esc(code[0]) + '">' + esc(code) + '</span> ' +
            md(r.description) + '</summary>' + headers + content(r.content) + '</details>';
        }).join('');
      }
      function operation(path, method, op, item) {
        const noAuth = Array.isArray(op.security) && op.security.length === 0;
        let h = '<section class="card" id="op-' + esc(op.operationId || method + path) + '"><div class="head"><span class="method m-' + method + '">' + method.toUpperCase() +
          '</span><code class="path">' + esc(path) + '</code><span class="summary">' + esc(op.summary || '') + '</span>' + (noAuth ? '<span class="tag">no auth</span>' : '') + '</div>';
        if (op.description) h += '<p>' + md(op.description) + '</p>';
        h += params((item.parameters || []).concat(op.parameters || []));
        if (op.requestBody) {
          const b = deref(op.requestBody);
          h += '<h4>Request body' + (b.required ? '' : ' (optional)') + '</h4>' + (b.description ? '<div class="desc">' + md(b.description) + '</div>' : '') + content(b.content);
        }
        return h + responses(op.responses) + '</section>';
      }
      function render() {
        const info = spec.info || {};
        const methods = ['get', 'put', 'post', 'patch', 'delete'];
        const ops = [];
        for (const path of Object.keys(spec.paths || {})) {
          for (const m of methods) if (spec.paths[path][m]) ops.push([path, m, spec.paths[path][m], spec.paths[path]]);
        }
        const schemes = (spec.components || {}).securitySchemes || {};
        const schemas = (spec.components || {}).schemas || {};
        let h = '<h1>' + esc(info.title || 'API') + '</h1><div class="version">Version ' + esc(info.version || '') + ' &middot; OpenAPI ' + esc(spec.openapi || '') +
          ' &middot; <a href="/openapi.json">openapi.json</a></div><p>' + md(info.description) + '</p>';
        h += '<h2>Authentication</h2>' + Object.keys(schemes).map((k) => {
          const s = schemes[k];
          const kind = s.type === 'http' ? 'HTTP ' + s.scheme + (s.bearerFormat ? ' (' + s.bearerFormat + ')' : '') : s.type + ' in ' + s.in + ': ' + s.name;
          return '<div class="card"><h3>' + esc(k) + ' <span class="tag">' + esc(kind) + '</span></h3><div>' + md(s.description) + '</div></div>';
        }).join('');
        h += '<nav><h2>Endpoints</h2><ul>' + ops.map(([p, m, op]) => '<li><a href="#op-' + esc(op.operationId || m + p) + '">' + m.toUpperCase() + ' ' + esc(p) + '</a></li>').join('') + '</ul></nav>';
        h += ops.map(([p, m, op, item]) => operation(p, m, op, item)).join('');
        h += '<h2>Schemas</h2>' + Object.keys(schemas).map((name) => {
          const s = schemas[name];
          return '<section class="card" id="schema-' + esc(name) + '"><h3>' + esc(name) + ' <span class="type">' + esc(typeOf(s).label) + '</span></h3>' +
            (s.description ? '<div class="desc">' + md(s.description) + '</div>' : '') + fields({ $ref: '#/components/schemas/' + name }, []) +
            (s.example !== undefined ? example('Example', s.example) : '') + '</section>';
        }).join('');
        document.title = info.title || 'API documentation';
        document.getElementById('app').innerHTML = h;
        if (location.hash) { const target = document.getElementById(location.hash.slice(1)); if (target) target.scrollIntoView(); }
      }
      fetch('/openapi.json')
        .then((r) => { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
        .then((doc) => { spec = doc; render(); })
        .catch((e) => { document.getElementById('app').innerHTML = '<p class="error">Could not load /openapi.json: ' + esc(e.message) + '</p>'; });
    </script>
    </body>
    </html>
    """#
}
