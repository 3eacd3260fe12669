import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile } from '../../../src/build/dockerfile/parser.js';
import { readDockerfile, type InstructionOf } from '../../../src/build/dockerfile/instructions.js';

const only = (text: string) => parseDockerfile(text).instructions;

test('continuations join lines; comment and empty lines inside them are skipped', () => {
  const [run, cmd] = only('FROM x\nRUN echo a \\\n# a comment\n\n    b\nCMD ["sh"]\n').slice(1);
  assert.equal(run?.rest, 'echo a     b');
  assert.equal(run?.line, 2);
  assert.equal(cmd?.rest, '["sh"]');
  assert.equal(cmd?.line, 6);
});

test('the escape directive switches to backtick; a backslash is then ordinary', () => {
  const parsed = parseDockerfile('# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo hi\n');
  assert.equal(parsed.escape, '`');
  assert.equal(parsed.instructions[1]?.rest, 'dir c:\\   && echo hi');
});

test('directives: only at the top, unknown ones end them, duplicates and bad escapes fail', () => {
  const late = parseDockerfile('# syntax=docker/dockerfile:1\n\n# escape=`\nFROM x\n');
  assert.deepEqual(late.directives, { syntax: 'docker/dockerfile:1' });
  assert.equal(late.escape, '\\');
  const afterUnknown = parseDockerfile('# foo=bar\n# escape=`\nFROM x\n');
  assert.equal(afterUnknown.escape, '\\');
  const check = parseDockerfile('# check=skip=all\n# escape=`\nFROM x\n');
  assert.deepEqual(check.directives, { check: 'skip=all', escape: '`' });
  assert.throws(() => parseDockerfile('# escape=`\n# escape=\\\nFROM x'), /Dockerfile:2:1: only one escape/);
  assert.throws(() => parseDockerfile('# escape=x\nFROM x'), /invalid escape token 'x'/);
});

test('flags are split off the arguments, quotes kept', () => {
  const [, copy] = only('FROM x\nCOPY --from=build --chown="a b" src /dst\n');
  assert.deepEqual(copy?.flags, ['--from=build', '--chown="a b"']);
  assert.equal(copy?.rest, 'src /dst');
  assert.equal(copy?.restColumn, 33);
});

test('heredocs: plain, <<- with tabs, quoted delimiters, several on one line', () => {
  const text = [
    'FROM x',
    'RUN <<EOF',
    'echo $HOME',
    '  indented',
    'EOF',
    'COPY <<-"ONE" <<TWO /dest/',
    '\tfirst $X',
    '\tONE',
    'second',
    'TWO',
    'RUN echo "<<NOT" && cat <<EOF > /f',
    'body',
    'EOF',
    'CMD x',
  ].join('\n');
  const [, run, copy, quoted, cmd] = only(text);
  assert.deepEqual(run?.heredocs, [
    { name: 'EOF', content: 'echo $HOME\n  indented\n', expand: true, chomp: false },
  ]);
  assert.deepEqual(copy?.heredocs, [
    { name: 'ONE', content: 'first $X\n', expand: false, chomp: true },
    { name: 'TWO', content: 'second\n', expand: true, chomp: false },
  ]);
  assert.equal(quoted?.heredocs.length, 1);
  assert.equal(quoted?.heredocs[0]?.content, 'body\n');
  assert.equal(cmd?.line, 14);
  assert.throws(() => only('FROM x\nRUN <<EOF\nno end\n'), /Dockerfile:2:1: unterminated heredoc/);
});

test('heredocs are only read for RUN, COPY and ADD', () => {
  const [, cmd, next] = only('FROM x\nCMD cat <<EOF\nRUN true\n');
  assert.deepEqual(cmd?.heredocs, []);
  assert.equal(next?.keyword, 'RUN');
});

test('stages, ARG before FROM, names', () => {
  const file = readDockerfile(
    'ARG BASE=busybox\nFROM ${BASE} AS Build\nRUN true\nFROM scratch\nCOPY --from=build /a /a\n',
  );
  assert.equal(file.metaArgs.length, 1);
  assert.equal(file.stages.length, 2);
  assert.equal(file.stages[0]?.name, 'build');
  assert.equal(file.stages[0]?.from.image, '${BASE}');
  assert.equal(file.stages[1]?.name, undefined);
  assert.equal(file.stages[1]?.instructions[0]?.kind, 'COPY');
});

test('exec and shell forms; a malformed array is shell form; non-strings fail', () => {
  const file = readDockerfile('FROM x\nCMD ["a", "b"]\nRUN [ "x" \nENTRYPOINT echo hi\n');
  const [cmd, run, entrypoint] = file.stages[0]?.instructions as unknown as Array<InstructionOf<'CMD'>>;
  assert.deepEqual(cmd?.command, { json: ['a', 'b'] });
  assert.deepEqual(run?.command, { shell: '[ "x"' });
  assert.deepEqual(entrypoint?.command, { shell: 'echo hi' });
  assert.throws(
    () => readDockerfile('FROM x\nCMD [1, 2]\n'),
    /Dockerfile:2:5: when using JSON array syntax, arrays must be comprised of strings only/,
  );
  assert.throws(
    () => readDockerfile('FROM x\nSHELL /bin/bash -c\n'),
    /Dockerfile:2:7: SHELL requires the arguments to be in JSON form/,
  );
});

test('ENV and LABEL pairs, legacy form, errors', () => {
  const file = readDockerfile('FROM x\nENV A=1 B="two words" C=\nENV LEGACY some value here\nLABEL "k"=v\n');
  const [env, legacy, label] = file.stages[0]?.instructions as unknown as Array<InstructionOf<'ENV'>>;
  assert.deepEqual(env?.pairs, [
    { key: 'A', value: '1' },
    { key: 'B', value: '"two words"' },
    { key: 'C', value: '' },
  ]);
  assert.deepEqual(legacy?.pairs, [{ key: 'LEGACY', value: 'some value here' }]);
  assert.deepEqual(label?.pairs, [{ key: '"k"', value: 'v' }]);
  assert.throws(() => readDockerfile('FROM x\nENV A=1 B\n'), /can't find = in "B"/);
  assert.throws(() => readDockerfile('FROM x\nENV ONLY\n'), /ENV must have two arguments/);
  assert.throws(() => readDockerfile('FROM x\nENV =x\n'), /ENV names can not be blank/);
});

test('errors name the line and column', () => {
  assert.throws(
    () => readDockerfile('FROM x\n  FOO bar\n'),
    /^BerthError: Dockerfile:2:3: unknown instruction: FOO$/,
  );
  assert.throws(() => readDockerfile('FROM x\nRUN\n'), /Dockerfile:2:1: RUN requires at least one argument/);
  assert.throws(() => readDockerfile('RUN true\nFROM x\n'), /Dockerfile:1:1: RUN before FROM/);
  assert.throws(() => readDockerfile('# just a comment\n'), /no FROM instruction/);
  assert.throws(() => readDockerfile('ARG A\n'), /no FROM instruction/);
  assert.throws(() => readDockerfile('FROM a b\n'), /FROM requires either one or three arguments/);
  assert.throws(() => readDockerfile('FROM a AS 1x\n'), /invalid name for build stage: "1x"/);
  assert.throws(() => readDockerfile('FROM a AS b\nFROM c AS B\n'), /duplicate name for build stage: "b"/);
  assert.throws(() => readDockerfile('FROM x\nCOPY --frm=a b c\n'), /Dockerfile:2:1: unknown flag: --frm/);
  assert.throws(() => readDockerfile('FROM x\nCOPY onlyone\n'), /COPY requires at least two arguments/);
  assert.throws(() => readDockerfile('FROM x\nONBUILD ONBUILD RUN x\n'), /Chaining ONBUILD/);
  assert.throws(() => readDockerfile('FROM x\nHEALTHCHECK --interval=5s NONE\n'), /options cannot be used/);
});

test('HEALTHCHECK, COPY with heredoc and JSON forms, VOLUME, ARG lists, ONBUILD', () => {
  const file = readDockerfile(
    [
      'FROM x',
      'HEALTHCHECK --interval=5s CMD ["true"]',
      'HEALTHCHECK NONE',
      'COPY <<EOF /etc/x',
      'hello',
      'EOF',
      'ADD ["a b", "/c d/"]',
      'VOLUME ["/a", "/b"]',
      'VOLUME /c /d',
      'ARG A B=2',
      'ONBUILD RUN echo hi',
    ].join('\n'),
  );
  const [health, none, copy, add, volume, volume2, arg, onbuild] = file.stages[0]?.instructions ?? [];
  assert.equal(health?.kind, 'HEALTHCHECK');
  assert.deepEqual(health?.kind === 'HEALTHCHECK' && health.test, { json: ['true'] });
  assert.deepEqual(health?.flags.get('interval'), ['5s']);
  assert.equal(none?.kind === 'HEALTHCHECK' && none.test, undefined);
  assert.ok(copy?.kind === 'COPY');
  assert.deepEqual(copy.sources, ['<<EOF']);
  assert.equal(copy.dest, '/etc/x');
  assert.equal(copy.heredocs[0]?.content, 'hello\n');
  assert.ok(add?.kind === 'ADD');
  assert.deepEqual(add.sources, ['a b']);
  assert.equal(add.dest, '/c d/');
  assert.deepEqual(volume?.kind === 'VOLUME' && volume.paths, { json: ['/a', '/b'] });
  assert.deepEqual(volume2?.kind === 'VOLUME' && volume2.paths, { text: '/c /d' });
  assert.deepEqual(arg?.kind === 'ARG' && arg.args, [{ name: 'A' }, { name: 'B', value: '2' }]);
  assert.deepEqual(onbuild?.kind === 'ONBUILD' && onbuild.trigger, 'RUN echo hi');
});
