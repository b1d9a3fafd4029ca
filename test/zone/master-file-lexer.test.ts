// Master-file tokenising (RFC 1035 section 5.1): entries, blank owners,
// parentheses, comments, quotes, escapes and the errors that break an entry.
import t from 'tap'
import { lexMasterFile } from '../../src/zone/master-file-lexer.js'
import { ZONE_PROBLEM } from '../../src/zone/zone-problem.js'

function texts(src: string): string[][] {
  return lexMasterFile(src).map((e) => e.tokens.map((tok) => (tok.quoted ? `"${tok.text}"` : tok.text)))
}

t.test('entries and tokens', async (t) => {
  const cases: Array<[string, string[][]]> = [
    ['a A 1.2.3.4\n', [['a', 'A', '1.2.3.4']]],
    ['a A 1.2.3.4', [['a', 'A', '1.2.3.4']]],
    ['\n\n; only a comment\n   \n', []],
    ['a TXT "x y" ; comment "not a string"\n', [['a', 'TXT', '"x y"']]],
    ['a TXT "semi;colon" "(paren)"\n', [['a', 'TXT', '"semi;colon"', '"(paren)"']]],
    ['a TXT "esc\\"aped"\n', [['a', 'TXT', '"esc\\"aped"']]],
    ['a TXT a\\;b a\\ b\n', [['a', 'TXT', 'a\\;b', 'a\\ b']]],
    ['a TXT x"y"\n', [['a', 'TXT', 'x', '"y"']]],
    ['a\tIN\tA\t1.2.3.4\r\n', [['a', 'IN', 'A', '1.2.3.4']]],
    ['@ SOA ns hm ( 1 ; serial\n 2 3\n 4 5 ) ; trailing\nb A 1.2.3.4\n', [['@', 'SOA', 'ns', 'hm', '1', '2', '3', '4', '5'], ['b', 'A', '1.2.3.4']]],
    ['a TXT ( "multi\nline" )\n', [['a', 'TXT', '"multi\nline"']]],
    ['a A(1.2.3.4)\n', [['a', 'A', '1.2.3.4']]],
  ]
  for (const [src, want] of cases) t.same(texts(src), want, JSON.stringify(src))
})

t.test('blank owner and line numbers', async (t) => {
  const entries = lexMasterFile('a A 1.2.3.4\n  A 1.2.3.5\n\n@ SOA ( ns\n hm\n 1 2 3 4 5 )\n\tTXT "x"\n')
  t.same(
    entries.map((e) => [e.line, e.blankOwner]),
    [
      [1, false],
      [2, true],
      [4, false],
      [7, true],
    ],
  )
  t.same(
    entries[2]?.tokens.map((tok) => tok.line),
    [4, 4, 4, 5, 6, 6, 6, 6, 6],
    'each token keeps its own line',
  )
})

t.test('lexical errors break only their entry', async (t) => {
  const cases: Array<[string, string, number]> = [
    ['a TXT "open\nb A 1.2.3.4\n', ZONE_PROBLEM.UNTERMINATED_STRING, 1],
    ['a A 1.2.3.4 )\nb A 1.2.3.4\n', ZONE_PROBLEM.BAD_PARENTHESES, 1],
    ['a SOA ( ( x )\nb A 1.2.3.4\n', ZONE_PROBLEM.BAD_PARENTHESES, 1],
  ]
  for (const [src, code, line] of cases) {
    const entries = lexMasterFile(src)
    t.match(entries[0]?.error, { code, line }, JSON.stringify(src))
    t.same(entries[1]?.tokens.map((tok) => tok.text), ['b', 'A', '1.2.3.4'], `${JSON.stringify(src)}: next entry parsed`)
  }
  const unclosed = lexMasterFile('x A 1.2.3.4\ny SOA ( ns hm\n 1 2 3 4 5\nz A 1.2.3.4\n')
  t.equal(unclosed.length, 2)
  t.match(unclosed[1]?.error, { code: ZONE_PROBLEM.BAD_PARENTHESES, line: 2 }, 'unclosed "(" is reported where it opened')
})
