// The `plivo` package ships no types: these declare the part of its API that Avviso uses.
declare module 'plivo' {
  export interface MessageCreateResponse {
    apiId: string;
    message: string;
    messageUuid: string[];
    invalid_number?: string[];
  }
  export interface MessageCreateParams {
    url?: string;
    method?: 'GET' | 'POST';
    type?: 'sms';
    log?: boolean | 'content_only' | 'number_only';
  }
  export class Client {
    constructor(authId: string, authToken: string, options?: { url?: string; timeout?: number });
    messages: {
      create(
        src: string,
        dst: string | string[],
        text: string,
        params?: MessageCreateParams,
      ): Promise<MessageCreateResponse>;
      get(messageUuid: string): Promise<Record<string, unknown>>;
      list(
        params?: Record<string, string | number>,
      ): Promise<Record<string, unknown>[] & { meta?: Record<string, unknown> }>;
    };
  }
  export function validateSignature(uri: string, nonce: string, signature: string, authToken: string): boolean;
}
