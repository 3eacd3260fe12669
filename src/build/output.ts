/**
 * Build output in Dockerfile order while stages run in parallel: each stage writes to its own
 * channel; the earliest unfinished channel streams live, later ones are held until it finishes.
 */
export class OrderedOutput {
  private readonly buffers: string[][];
  private readonly done: boolean[];
  private live = 0;

  constructor(
    channels: number,
    private readonly sink: (text: string) => void,
  ) {
    this.buffers = Array.from({ length: channels }, () => []);
    this.done = Array.from({ length: channels }, () => false);
  }

  write(channel: number, text: string): void {
    if (text === '') return;
    if (channel === this.live) this.sink(text);
    else this.buffers[channel]?.push(text);
  }

  /** The channel has nothing more to say: flush the next ones in order. */
  finish(channel: number): void {
    this.done[channel] = true;
    while (this.live < this.done.length && this.done[this.live]) {
      this.live++;
      const pending = this.buffers[this.live];
      if (pending === undefined) break;
      for (const text of pending.splice(0)) this.sink(text);
    }
  }
}
