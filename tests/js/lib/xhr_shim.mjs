// A small XMLHttpRequest for Node.js, enough for autobahn-js's long-poll transport
// (lib/util.js http_post: open, setRequestHeader, send, timeout/ontimeout,
// onreadystatechange with readyState 4, status, statusText, responseText).
// Node has no XMLHttpRequest; browsers do, and autobahn-js's 'longpoll'
// transport uses whatever global XMLHttpRequest exists.
//
// install() puts it on globalThis.  Every request goes over node:http with a
// keep-alive agent, so a held receive request and the sends run on separate
// connections, as in a browser.

import http from 'node:http';

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

export const stats = { requests: 0, byPath: {} };

class NodeXMLHttpRequest {
  constructor() {
    this.readyState = 0;
    this.status = 0;
    this.statusText = '';
    this.responseText = '';
    this.timeout = 0;
    this.withCredentials = false;
    this.onreadystatechange = null;
    this.ontimeout = null;
    this._headers = {};
    this._done = false;
  }

  open(method, url, async = true) {
    if (!async) throw new Error('synchronous XMLHttpRequest is not supported');
    this._method = method;
    this._url = new URL(url);
    this.readyState = 1;
  }

  setRequestHeader(name, value) {
    this._headers[name] = value;
  }

  _finish(status, statusText, text) {
    if (this._done) return;
    this._done = true;
    this.status = status;
    this.statusText = statusText;
    this.responseText = text;
    this.readyState = 4;
    if (this.onreadystatechange) this.onreadystatechange();
  }

  send(data) {
    const body = data === undefined || data === null ? null : Buffer.from(String(data), 'utf8');
    const headers = { ...this._headers };
    if (body) headers['Content-Length'] = String(body.length);
    stats.requests += 1;
    const op = this._url.pathname.split('/').pop();
    stats.byPath[op] = (stats.byPath[op] || 0) + 1;
    const req = http.request({
      agent,
      method: this._method,
      hostname: this._url.hostname,
      port: this._url.port,
      path: this._url.pathname + this._url.search,
      headers,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => this._finish(res.statusCode, res.statusMessage, Buffer.concat(chunks).toString('utf8')));
      res.on('error', () => this._finish(0, 'response error', ''));
    });
    if (this.timeout > 0) {
      req.setTimeout(this.timeout, () => {
        if (this._done) return;
        this._done = true;
        req.destroy();
        if (this.ontimeout) this.ontimeout();
      });
    }
    req.on('error', (e) => this._finish(0, String(e && e.message), ''));
    if (body) req.write(body);
    req.end();
  }
}

export function install() {
  globalThis.XMLHttpRequest = NodeXMLHttpRequest;
}

export function shutdown() {
  agent.destroy();
}
