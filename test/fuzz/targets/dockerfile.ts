/**
 * Dockerfiles (`docker build`): the parser and instruction reader, then what the builder does with
 * the words before running anything: variable expansion of every argument (shell-lex.ts) and the
 * RUN --mount specifications. Everything ends in a result or a BerthError.
 */
import { readDockerfile, type Instruction } from '../../../src/build/dockerfile/instructions.js';
import {
  expandHeredoc,
  processWord,
  processWords,
  recordingLookup,
} from '../../../src/build/dockerfile/shell-lex.js';
import { parseMount } from '../../../src/build/mounts.js';
import type { Rng } from '../rng.js';
import type { FuzzTarget } from '../target.js';

const VALUES = new Map([
  ['A', 'a'],
  ['EMPTY', ''],
  ['SPACED', ' x  y '],
  ['HOME', '/root'],
]);

const INSTRUCTION_LINES = [
  'FROM busybox AS build',
  'FROM --platform=$BUILDPLATFORM ${IMAGE:-busybox}:${TAG}',
  'RUN echo hi',
  'RUN --mount=type=cache,target=/c,id=x,sharing=locked echo a',
  'RUN --mount=type=bind,from=build,source=/a,target=/b,rw echo',
  'RUN --mount=type=secret,id=s,required=true cat /run/secrets/s',
  'RUN --mount=type=tmpfs,target=/t,size=10m true',
  'RUN --network=none --security=sandbox true',
  'RUN <<EOF\necho a\nEOF',
  'RUN <<-"EOT" bash\n\techo $A\n\tEOT',
  'COPY --from=build --chown=1:1 --chmod=0755 a b /dst/',
  'COPY --link --parents --exclude=*.tmp a* /x/',
  'COPY <<EOF /file\ncontent $A\nEOF',
  'ADD --checksum=sha256:0000 https://127.0.0.1/x /y',
  'ADD --keep-git-dir=true x /y',
  'CMD ["sh", "-c", "echo"]',
  'ENTRYPOINT ["/bin/sh"]',
  'SHELL ["/bin/sh", "-c"]',
  'ENV A=b C="d e" F=${A:+set}',
  'ENV OLD value with spaces',
  'LABEL "k"="v" x=y',
  'ARG V=1',
  'ARG NOVALUE',
  'EXPOSE 80/tcp 53/udp ${PORT}',
  'USER 1000:1000',
  'WORKDIR /w/$A',
  'STOPSIGNAL SIGTERM',
  'MAINTAINER me',
  'VOLUME ["/v", "/w"]',
  'VOLUME /a /b',
  'HEALTHCHECK --interval=5s --timeout=3s --retries=3 CMD true',
  'HEALTHCHECK NONE',
  'ONBUILD RUN true',
  '# comment',
  '# escape=`',
  '# syntax=docker/dockerfile:1',
];

/** Line-level changes: lines repeated, dropped, swapped, joined by continuations, or new instructions. */
function mutateLines(input: Buffer, rng: Rng): Buffer {
  const lines = input.toString('utf8').split('\n');
  for (let round = rng.between(1, 3); round > 0; round--) {
    const at = rng.int(lines.length + 1);
    switch (rng.int(5)) {
      case 0:
        lines.splice(at, 0, ...rng.pick(INSTRUCTION_LINES).split('\n'));
        break;
      case 1:
        lines.splice(at, 1);
        break;
      case 2:
        lines.splice(at, 0, lines[rng.int(lines.length)] ?? '');
        break;
      case 3: {
        const other = rng.int(lines.length);
        const held = lines[at] ?? '';
        lines[at] = lines[other] ?? '';
        lines[other] = held;
        break;
      }
      default:
        lines[at] = `${lines[at] ?? ''} ${rng.pick(['\\', '`', '\\ ', '<<EOF', '&& \\'])}`;
    }
  }
  return Buffer.from(lines.join('\n'), 'utf8');
}

/** What the builder expands in each instruction before running it. */
function expand(instruction: Instruction, escape: string): void {
  const lookup = recordingLookup(VALUES, new Set());
  const word = (text: string): string => processWord(text, lookup, escape);
  const words = (text: string): string[] => processWords(text, lookup, escape);
  switch (instruction.kind) {
    case 'FROM':
      word(instruction.image);
      break;
    case 'ENV':
    case 'LABEL':
      for (const { key, value } of instruction.pairs) {
        word(key);
        word(value);
      }
      break;
    case 'ARG':
      for (const arg of instruction.args) if (arg.value !== undefined) word(arg.value);
      break;
    case 'EXPOSE':
    case 'USER':
    case 'WORKDIR':
    case 'STOPSIGNAL':
      words(instruction.text);
      break;
    case 'VOLUME':
      if ('text' in instruction.paths) words(instruction.paths.text);
      break;
    case 'COPY':
    case 'ADD':
      for (const source of instruction.sources) word(source);
      word(instruction.dest);
      for (const heredoc of instruction.heredocs)
        if (heredoc.expand) expandHeredoc(heredoc.content, lookup, escape);
      break;
    case 'RUN':
      for (const mount of instruction.flags.get('mount') ?? []) parseMount(word(mount), '/w');
      break;
    default:
  }
}

export const target: FuzzTarget = {
  name: 'dockerfile',
  description: 'Dockerfiles: parse, read instructions, expand variables, parse RUN --mount',
  maxLength: 64 * 1024,
  dictionary: [
    ...new Set(INSTRUCTION_LINES.map((line) => line.split(/[\s=]/)[0] as string)),
    ' \\\n',
    ' `\n',
    '\n',
    '<<EOF\n',
    '<<-EOF',
    '\nEOF\n',
    '${',
    '}',
    '${A:-',
    '${A:+',
    '${A:?',
    '${A#',
    '${A%',
    '${A/',
    '$A',
    '"',
    "'",
    '["a", "b"]',
    '--mount=',
    'type=cache,',
    'target=',
    '--from=',
    '--chown=',
    '--platform=',
    '=',
    ' AS ',
  ],
  mutate: (input, rng) => mutateLines(input, rng),
  run(input) {
    const dockerfile = readDockerfile(input.toString('utf8'));
    for (const instruction of dockerfile.metaArgs) expand(instruction, dockerfile.escape);
    for (const stage of dockerfile.stages) {
      expand(stage.from, dockerfile.escape);
      for (const instruction of stage.instructions) expand(instruction, dockerfile.escape);
    }
  },
};
