"""Chinese, Japanese and Korean text as overlapping character bigrams, so FTS5's unicode61 tokenizer finds their words.

unicode61 keeps a run of CJK characters (which are written without spaces) as one token, so a question only
matched a passage holding the very same run. Like Lucene's CJKAnalyzer we write each run as its overlapping
two-character pieces (a lone character stays a unigram): a word of two or more characters in the question then
shares its bigrams with the passage, whatever surrounds it. Text without CJK characters is returned unchanged.
"""

from __future__ import annotations

import re

# Han (with extension A, compatibility ideographs, the iteration marks 々 and 〇, and the supplementary planes),
# Hiragana, Katakana (with the prolonged sound mark and the half-width forms) and Hangul (syllables and jamo).
# The katakana middle dot ・ (U+30FB) is punctuation and stays out.
_CJK_CHARACTERS = (
    "\u1100-\u11ff\u3005\u3007\u3040-\u309f\u30a0-\u30fa\u30fc-\u30ff\u3130-\u318f\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0003134f"
)
CJK_RUN = re.compile(f"[{_CJK_CHARACTERS}]+")

# Function characters of questions: particles, the copula and question words (的 了 是 吗, 什么 哪 谁 怎;
# Japanese の は が を に で か; Korean 는 을 를 에). A bigram holding one ties a content word to grammar
# ("会的", "义是"), and a passage sharing only such bigrams is no better a match, so queries leave them out.
# Characters that also start content words (在 in 存在, 和 in 和平, 个 in 两个, Korean 의 in 회의) are not here.
STOP_CHARACTERS = frozenset("的了是吗呢吧啊什么哪谁怎这那のはがをにでかねよ는을를에")


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds any Chinese, Japanese or Korean character."""
    return CJK_RUN.search(text) is not None


def bigrams(run: str) -> list[str]:
    """Overlapping two-character pieces of a CJK run, in order; a single character is its own piece."""
    if len(run) < 2:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def fts_form(text: str) -> str:
    """``text`` as written to the keyword index: each CJK run replaced by its space-separated bigrams.

    The spaces around a run also part it from Latin letters or digits next to it ("Python编程" -> "Python 编程").
    Text without CJK characters is returned as it is, so its tokens and BM25 statistics do not change.
    """
    if not has_cjk(text):
        return text
    return CJK_RUN.sub(lambda run: " " + " ".join(bigrams(run.group())) + " ", text)


def is_stop_term(term: str) -> bool:
    """Whether a query term is a CJK bigram or unigram holding a stop character (see ``STOP_CHARACTERS``)."""
    return len(term) <= 2 and has_cjk(term) and not STOP_CHARACTERS.isdisjoint(term)
