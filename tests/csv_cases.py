"""CSV files that put every rule of the readers in play, for the tests that compare them
(tests/test_csv_parsers.py: both parsers against the standard reader; tests/test_stream.py:
the fast reader against it): quotes and fields across lines, blank and white lines, carriage
returns, ragged rows, encodings and byte-order marks, NUL, padded fields, other delimiters,
numbers in and out of the decimal form, a header alone."""

CSV_FILES: list[bytes] = [
    b"a,b,c\n1,2,x\n3,4,y\n",
    b"a,b,c\r\n1,2,x\r\n3,4,y",
    b"a;b;c\n1;2;x\n3; 4 ;y\n",
    b"a,b,c\n1,2,x\n\n3,4,y\n  \n5,6,z\n",
    b"\n\na,b\n1,2\n3,4\n",
    b'a,b,c\n1,2,x\n3,4,"y,z"\n5,6,"multi\nline"\n7,8,w\n',
    b"a,b,c\n1,2,x\n3,4\n5,6,z\n",
    b"a,b,c\n1,2,x\n3,4,5,6\n5,6,z\n",
    b"a,b\n1,\xe92\n3,4\n",
    b"a,b\n1,2\n3,\xff\xfe\n",
    b"\xef\xbb\xbfa,b\n1,2\n",
    b"\xef\xbb\xbfa,b\r\n1,NA\r\n,2\r\n",
    b"a,b\n1,2\x00\n",
    b"a,b\n1,\xa02\n",
    "a,b\n1,\u00a0x\u00a0\n".encode(),
    "a,b\n1,\u00e9t\u00e9\n2,caf\u00e9 \n".encode(),
    b"a\tb\n1\t2\n",
    b"a|b\n1|2\n3|4",
    b"a,b\n",
    b"a,b\r1,2\r3,4\r",
    b"a,b\n1e5,.5\n+3,5.\n-0,1E-3\n",
    b"a,b\ninf,nan\n-Infinity,NaN\n1_000,1e999\n",
    b"a,b\n 1,2 \n\t3,4\t\n",
    b"a,b\n1,2\n3,x\n5,6\n",
    "a,b\n\uff11,2\n3,4\n".encode(),
    b"a,b\n0x10,1\n,\n",
]
