/**
 * A browser as far as the console cares: a cookie jar, redirects seen (not followed), and the
 * CSRF token of the last page's forms. Requests go over real HTTP to the test stack's API.
 */
export interface Page {
  status: number;
  location: string | null;
  headers: Headers;
  text: string;
}

export class Browser {
  readonly cookies = new Map<string, string>();
  csrf: string | undefined;
  constructor(
    readonly baseUrl: string,
    readonly headers: Record<string, string> = {},
  ) {}

  private remember(res: Response) {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  private cookieHeader(): Record<string, string> {
    return this.cookies.size ? { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } : {};
  }

  async get(path: string, extra: Record<string, string> = {}): Promise<Page> {
    const res = await fetch(this.baseUrl + path, {
      redirect: 'manual',
      headers: { ...this.headers, ...this.cookieHeader(), ...extra },
    });
    this.remember(res);
    const text = await res.text();
    const token = /name="_csrf" value="([^"]+)"/.exec(text)?.[1];
    if (token) this.csrf = token;
    return { status: res.status, location: res.headers.get('location'), headers: res.headers, text };
  }

  /** A form post; the last page's CSRF token is added unless `form._csrf` is given (null: none). */
  async post(path: string, form: Record<string, string | null> = {}): Promise<Page> {
    const fields = { _csrf: this.csrf ?? null, ...form };
    const body = new URLSearchParams(Object.entries(fields).filter((e): e is [string, string] => e[1] !== null));
    const res = await fetch(this.baseUrl + path, {
      method: 'POST',
      redirect: 'manual',
      headers: { ...this.headers, ...this.cookieHeader(), 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    this.remember(res);
    return { status: res.status, location: res.headers.get('location'), headers: res.headers, text: await res.text() };
  }

  async signIn(key: string): Promise<Page> {
    await this.get('/console/login');
    return this.post('/console/login', { key, next: '/console/now' });
  }
}
