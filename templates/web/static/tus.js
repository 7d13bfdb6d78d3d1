// A small tus 1.0.0 client (https://tus.io/protocols/resumable-upload): creation
// (POST with Upload-Length and Upload-Metadata), appends in chunks (PATCH at
// Upload-Offset), HEAD to learn the offset when resuming, pause and resume. The upload
// URL is remembered in localStorage under the file's name, size and mtime (and where it
// goes), so choosing the same file again after a reload continues where it stopped.
// PATCHes go through XMLHttpRequest for its upload progress events.

const TUS_VERSION = '1.0.0';
const PREFIX = 'shardlyn.tus:';
const RETRY_DELAYS = [500, 1000, 3000, 5000, 10000];

/** base64 of the UTF-8 bytes of `text` (Upload-Metadata values). */
function b64(text) {
  let bin = '';
  for (const byte of new TextEncoder().encode(text)) bin += String.fromCharCode(byte);
  return btoa(bin);
}

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

/** The localStorage key of `file` going to `dir` through `endpoint`. */
export function storageKey(endpoint, dir, file) {
  return `${PREFIX}${endpoint}|${dir}|${file.name}|${file.size}|${file.lastModified}`;
}

/** Unfinished uploads remembered for `endpoint`: `{key, name, dir, size, offset}`. */
export function pending(endpoint) {
  const out = [];
  for (let i = 0; i < localStorage.length; i += 1) {
    const key = localStorage.key(i);
    if (!key || !key.startsWith(`${PREFIX}${endpoint}|`)) continue;
    try {
      out.push({ key, ...JSON.parse(localStorage.getItem(key)) });
    } catch {
      localStorage.removeItem(key);
    }
  }
  return out;
}

/** An upload of one file. Events: onProgress(sent, total), onState(state, detail). */
export class Upload {
  /**
   * @param {File} file
   * @param {{endpoint: string, dir: string, headers: (fresh: boolean) => Promise<object>,
   *          chunkSize?: number}} options
   */
  constructor(file, options) {
    this.file = file;
    this.endpoint = options.endpoint;
    this.dir = options.dir;
    this.headers = options.headers;
    this.chunkSize = options.chunkSize || 8 * 1024 * 1024;
    this.key = storageKey(this.endpoint, this.dir, file);
    this.url = null;
    this.offset = 0;
    this.state = 'idle';
    this.xhr = null;
    this.onProgress = () => {};
    this.onState = () => {};
  }

  setState(state, detail) {
    this.state = state;
    this.onState(state, detail);
  }

  remember() {
    localStorage.setItem(this.key, JSON.stringify({
      url: this.url, name: this.file.name, dir: this.dir, size: this.file.size, offset: this.offset,
    }));
  }

  forget() {
    localStorage.removeItem(this.key);
  }

  async fetchTus(method, url, extra = {}, fresh = false) {
    const headers = { ...(await this.headers(fresh)), 'Tus-Resumable': TUS_VERSION, ...extra };
    const r = await fetch(url, { method, headers, credentials: 'same-origin' });
    return r.status === 401 && !fresh ? this.fetchTus(method, url, extra, true) : r;
  }

  /** The server's offset of a remembered upload; null when it is gone. */
  async head() {
    const r = await this.fetchTus('HEAD', this.url, { 'Cache-Control': 'no-store' });
    if (!r.ok) return null;
    const offset = Number(r.headers.get('Upload-Offset'));
    return Number.isFinite(offset) ? offset : null;
  }

  async create() {
    const metadata = `filename ${b64(this.file.name)},path ${b64(this.dir)}`;
    const r = await this.fetchTus('POST', this.endpoint, {
      'Upload-Length': String(this.file.size),
      'Upload-Metadata': metadata,
    });
    if (r.status !== 201) {
      let message = `the upload could not be created (${r.status})`;
      try { message = (await r.json()).error || message; } catch { /* not JSON */ }
      throw new Error(message);
    }
    const location = r.headers.get('Location');
    if (!location) throw new Error('the server gave no upload URL');
    this.url = new URL(location, window.location.href).pathname;
    this.offset = Number(r.headers.get('Upload-Offset')) || 0;
    this.remember();
  }

  /** One PATCH of the chunk at the current offset; the new offset. */
  async patch() {
    const end = Math.min(this.offset + this.chunkSize, this.file.size);
    const chunk = this.file.slice(this.offset, end);
    const headers = await this.headers(false);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      this.xhr = xhr;
      xhr.open('PATCH', this.url);
      for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
      xhr.setRequestHeader('Tus-Resumable', TUS_VERSION);
      xhr.setRequestHeader('Upload-Offset', String(this.offset));
      xhr.setRequestHeader('Content-Type', 'application/offset+octet-stream');
      const base = this.offset;
      xhr.upload.onprogress = (ev) => this.onProgress(base + ev.loaded, this.file.size);
      xhr.onload = () => {
        this.xhr = null;
        const offset = Number(xhr.getResponseHeader('Upload-Offset'));
        if (xhr.status === 204 && Number.isFinite(offset)) resolve(offset);
        else {
          const err = new Error(xhr.status === 409 ? 'offset mismatch' : `append failed (${xhr.status})`);
          err.status = xhr.status;
          try { err.message = JSON.parse(xhr.responseText).error || err.message; } catch { /* keep */ }
          reject(err);
        }
      };
      xhr.onerror = () => { this.xhr = null; reject(Object.assign(new Error('network error'), { status: 0 })); };
      xhr.onabort = () => { this.xhr = null; reject(Object.assign(new Error('paused'), { paused: true })); };
      xhr.send(chunk);
    });
  }

  /** Starts, or resumes after a pause (or a reload: the remembered URL is used). */
  async start() {
    if (this.state === 'uploading') return;
    this.setState('uploading');
    try {
      if (!this.url) {
        const saved = localStorage.getItem(this.key);
        if (saved) {
          try { this.url = JSON.parse(saved).url; } catch { this.url = null; }
        }
      }
      if (this.url) {
        const offset = await this.head();
        if (offset === null) {
          this.forget();
          this.url = null;
        } else {
          this.offset = offset;
          if (offset > 0) this.setState('uploading', 'resumed');
        }
      }
      if (!this.url) await this.create();
      this.onProgress(this.offset, this.file.size);
      let failures = 0;
      while (this.offset < this.file.size) {
        if (this.state !== 'uploading') return;
        try {
          this.offset = await this.patch();
          failures = 0;
          this.remember();
          this.onProgress(this.offset, this.file.size);
        } catch (e) {
          if (e.paused) return;
          const retriable = e.status === 0 || e.status === 409 || e.status === 423 || e.status >= 500;
          if (!retriable || failures >= RETRY_DELAYS.length) throw e;
          await sleep(RETRY_DELAYS[failures]);
          failures += 1;
          const offset = await this.head();
          if (offset === null) throw new Error('the upload expired on the server');
          this.offset = offset;
        }
      }
      this.forget();
      this.setState('done');
    } catch (e) {
      this.setState('error', e.message);
    }
  }

  /** Stops after aborting the request in flight; `start()` resumes. */
  pause() {
    if (this.state !== 'uploading') return;
    this.setState('paused');
    if (this.xhr) this.xhr.abort();
  }

  /** Ends the upload and deletes its partial data on the server. */
  async cancel() {
    this.pause();
    this.setState('cancelled');
    if (this.url) await this.fetchTus('DELETE', this.url).catch(() => null);
    this.forget();
  }
}
