/**
 * Worker side of encode-pool.ts: builds the server's tokenizer from its files once, then encodes
 * one request per message with encodeRequest (the same code and limits as inline encoding).
 * Ids go back as Int32Arrays whose buffers are transferred, not copied.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PrmTokenizer } from '../model/tokenizer.js';
import { HttpError } from './errors.js';
import { encodeRequest, type EncodeLimits, type ScoreRequest } from './request.js';

export interface EncodeWorkerData {
  tokenizerJson: string;
  tokenizerConfigJson: string;
  stepToken: string;
}

export interface EncodeJob {
  id: number;
  request: ScoreRequest;
  limits: EncodeLimits;
}

export type EncodeReply =
  | { id: number; ok: true; sequences: { inputIds: Int32Array; stepPositions: number[]; nSteps: number }[] }
  | { id: number; ok: false; status: number; message: string };

const port = parentPort!;
const data = workerData as EncodeWorkerData;
const tokenizer = PrmTokenizer.fromFiles(data.tokenizerJson, data.tokenizerConfigJson, { stepToken: data.stepToken });

port.on('message', (job: EncodeJob) => {
  let reply: EncodeReply;
  const transfer: ArrayBuffer[] = [];
  try {
    const encoded = encodeRequest(tokenizer, job.request, job.limits);
    const sequences = encoded.map((e) => {
      const inputIds = Int32Array.from(e.inputIds);
      transfer.push(inputIds.buffer);
      return { inputIds, stepPositions: e.stepPositions, nSteps: e.nSteps };
    });
    reply = { id: job.id, ok: true, sequences };
  } catch (e) {
    reply =
      e instanceof HttpError
        ? { id: job.id, ok: false, status: e.status, message: e.message }
        : { id: job.id, ok: false, status: 500, message: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply, transfer);
});

port.postMessage({ ready: true });
