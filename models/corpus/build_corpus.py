#!/usr/bin/python3
"""Builds the w4a4c training corpus from Debian `main` packages.

Reproducible from the package names alone (see models/setup-models.sh): every
document is extracted from files those packages install, cleaned to plain UTF-8
English, and assigned to train / validation / calibration by a hash of its id
(document-level split). Writes <out>/{train,validation,calibration}.txt
(documents separated by a blank line) and <out>/corpus.json (sources, document
counts, sizes and sha256 of each split).

    /usr/bin/python3 models/corpus/build_corpus.py --out models/data/corpus
"""

import argparse
import glob
import gzip
import hashlib
import html.parser
import json
import os
import re
import subprocess
import sys

BOOKS = [
    "Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Joshua", "Judges", "Ruth",
    "I Samuel", "II Samuel", "I Kings", "II Kings", "I Chronicles", "II Chronicles", "Ezra",
    "Nehemiah", "Esther", "Job", "Psalms", "Proverbs", "Ecclesiastes", "Song of Solomon",
    "Isaiah", "Jeremiah", "Lamentations", "Ezekiel", "Daniel", "Hosea", "Joel", "Amos",
    "Obadiah", "Jonah", "Micah", "Nahum", "Habakkuk", "Zephaniah", "Haggai", "Zechariah",
    "Malachi", "Matthew", "Mark", "Luke", "John", "Acts", "Romans", "I Corinthians",
    "II Corinthians", "Galatians", "Ephesians", "Philippians", "Colossians",
    "I Thessalonians", "II Thessalonians", "I Timothy", "II Timothy", "Titus", "Philemon",
    "Hebrews", "James", "I Peter", "II Peter", "I John", "II John", "III John", "Jude",
    "Revelation of John",
]
KJV_NAMES = {"I": "1", "II": "2", "III": "3"}


def clean(text):
    text = text.replace("\r", "").replace("\t", " ").replace("\u00a0", " ")
    text = re.sub(r"[ ]+", " ", text)
    lines = [ln.strip() for ln in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


class TextExtractor(html.parser.HTMLParser):
    SKIP = {"script", "style", "head", "title"}
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
             "dt", "dd", "table", "section", "blockquote"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_to_text(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        parser = TextExtractor()
        parser.feed(f.read())
    return clean("".join(parser.parts))


def chunk(text, size=4000):
    """Splits one long text into documents of about `size` characters at
    paragraph boundaries."""
    docs, cur = [], []
    n = 0
    for para in text.split("\n\n"):
        cur.append(para)
        n += len(para)
        if n >= size:
            docs.append("\n\n".join(cur))
            cur, n = [], 0
    if cur:
        docs.append("\n\n".join(cur))
    return docs


def web_bible():
    verse_re = re.compile(r"^\s*(.+?) (\d+):(\d+): ?(.*)$")
    for book in BOOKS:
        out = subprocess.run(["diatheke", "-b", "engWEB2015eb", "-f", "plain", "-k", book + " 1:1-150:200"],
                             capture_output=True, text=True, check=True).stdout
        chapters, current = {}, None
        for line in out.splitlines():
            m = verse_re.match(line)
            if m:
                # The key range runs on into the next books: keep this book only.
                current = chapters.setdefault(int(m.group(2)), []) if m.group(1) == book else None
                if current is not None:
                    current.append(m.group(4).strip())
            elif current is not None and line.strip() and not line.startswith("(engWEB"):
                current[-1] += " " + line.strip()
        if not chapters:
            raise RuntimeError("diatheke printed no verses for " + book)
        for ch, verses in sorted(chapters.items()):
            yield "web/%s/%d" % (book, ch), clean("%s %d\n\n%s" % (book, ch, " ".join(verses)))


def kjv_name(book):
    """The book name as the `bible` program (bible-kjv) parses it."""
    special = {"Song of Solomon": "Song", "Revelation of John": "Revelation"}
    if book in special:
        return special[book]
    words = book.split(" ")
    if words[0] in KJV_NAMES:
        words[0] = KJV_NAMES[words[0]]
    return "".join(words)


def kjv_bible(chapter_counts):
    for book in BOOKS:
        for ch in range(1, chapter_counts[book] + 1):
            out = subprocess.run(["bible", "%s %d:1-%d:999" % (kjv_name(book), ch, ch)],
                                 capture_output=True, text=True, check=True).stdout
            lines = out.strip().split("\n")
            if not lines or not lines[0].endswith(" %d" % ch):
                raise RuntimeError("bible printed %r for %s %d" % (lines[:1], book, ch))
            text = re.sub(r"^\s*\d+ ", "", "\n".join(lines[1:]), flags=re.M)
            yield "kjv/%s/%d" % (book, ch), clean("%s %d\n\n%s" % (book, ch, text))


def html_tree(prefix, pattern):
    for path in sorted(glob.glob(pattern, recursive=True)):
        text = html_to_text(path)
        if len(text) > 200:
            yield "%s/%s" % (prefix, os.path.basename(path)), text


def gz_tree(prefix, root, suffixes):
    for path in sorted(glob.glob(os.path.join(root, "**", "*.gz"), recursive=True)):
        if not any(path.endswith(s + ".gz") for s in suffixes):
            continue
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            text = clean(f.read())
        if len(text) > 200:
            yield "%s/%s" % (prefix, os.path.relpath(path, root)), text


def plain_tree(prefix, root, suffix):
    for path in sorted(glob.glob(os.path.join(root, "**", "*" + suffix), recursive=True)):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = clean(f.read())
        if len(text) > 200:
            yield "%s/%s" % (prefix, os.path.relpath(path, root)), text


def single_file(prefix, path):
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        text = clean(f.read())
    for i, doc in enumerate(chunk(text)):
        yield "%s/%05d" % (prefix, i), doc


def split_of(doc_id):
    h = int(hashlib.sha256(doc_id.encode()).hexdigest()[:8], 16) % 1000
    if h < 20:
        return "validation"
    if h < 30:
        return "calibration"
    return "train"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--manifest", help="also write corpus.json here (the committed copy)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    web = list(web_bible())
    chapter_counts = {}
    for doc_id, _ in web:
        book = doc_id.split("/")[1]
        chapter_counts[book] = chapter_counts.get(book, 0) + 1
    sources = [
        ("sword-text-web + diatheke", web),
        ("bible-kjv-text + bible-kjv", kjv_bible(chapter_counts)),
        ("debian-handbook", html_tree("debian-handbook", "/usr/share/doc/debian-handbook/html/en-US/*.html")),
        ("postgresql-doc-15", html_tree("postgresql", "/usr/share/doc/postgresql-doc-15/html/*.html")),
        ("python3.11-doc", plain_tree("python", "/usr/share/doc/python3.11/html/_sources", ".rst.txt")),
        ("linux-doc-6.1", gz_tree("linux", "/usr/share/doc/linux-doc-6.1/Documentation", [".rst", ".txt"])),
        ("jargon-text", single_file("jargon", "/usr/share/doc/jargon-text/jargon.txt.gz")),
        ("dict-devil", single_file("devil", "/usr/share/dictd/devil.dict.dz")),
    ]
    splits = {s: [] for s in ("train", "validation", "calibration")}
    stats = {}
    for name, docs in sources:
        count = chars = 0
        for doc_id, text in docs:
            if not text:
                continue
            splits[split_of(doc_id)].append(text)
            count += 1
            chars += len(text)
        if count == 0:
            sys.exit("build_corpus: no documents from %s; is the package installed?" % name)
        stats[name] = {"documents": count, "characters": chars}
        print("  %-28s %6d documents %10d characters" % (name, count, chars), flush=True)

    manifest = {"sources": stats, "splits": {}}
    for split, docs in splits.items():
        data = ("\n\n".join(docs) + "\n").encode("utf-8")
        path = os.path.join(args.out, split + ".txt")
        with open(path, "wb") as f:
            f.write(data)
        manifest["splits"][split] = {"documents": len(docs), "bytes": len(data),
                                     "sha256": hashlib.sha256(data).hexdigest()}
        print("  %-11s %6d documents %10d bytes" % (split, len(docs), len(data)), flush=True)
    for path in filter(None, [os.path.join(args.out, "corpus.json"), args.manifest]):
        with open(path, "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
