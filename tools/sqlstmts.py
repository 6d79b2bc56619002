# tools/sqlstmts.py — splits an SQL script into statements and names the
# object each CREATE statement defines (used by tools/upgrade_diff.py).
import re, sys
def statements(sql):
    """Split an SQL script into statements (top-level ';'), honouring $$ and '...' quoting and -- comments."""
    out=[]; buf=[]; i=0; n=len(sql); dollar=None; inq=False
    while i<n:
        c=sql[i]
        if dollar:
            if sql.startswith(dollar,i):
                buf.append(dollar); i+=len(dollar); dollar=None; continue
            buf.append(c); i+=1; continue
        if inq:
            buf.append(c); i+=1
            if c=="'":
                if i<n and sql[i]=="'": buf.append("'"); i+=1
                else: inq=False
            continue
        if sql.startswith('--',i):
            j=sql.find('\n',i); j = n if j<0 else j
            buf.append(sql[i:j]); i=j; continue
        m=re.match(r'\$[A-Za-z_]*\$', sql[i:])
        if m:
            dollar=m.group(0); buf.append(dollar); i+=len(dollar); continue
        if c=="'":
            inq=True; buf.append(c); i+=1; continue
        if c==';':
            buf.append(';'); out.append(''.join(buf)); buf=[]; i+=1; continue
        buf.append(c); i+=1
    if ''.join(buf).strip(): out.append(''.join(buf))
    return out
def strip_comments(st):
    return '\n'.join(l for l in st.split('\n') if not l.strip().startswith('--')).strip()
def key(st):
    s=' '.join(strip_comments(st).split())
    m=re.match(r'CREATE (?:OR REPLACE )?(FUNCTION|VIEW|AGGREGATE|OPERATOR CLASS|OPERATOR|TABLE|INDEX|UNIQUE INDEX|TRIGGER|TYPE|SEQUENCE)\s+(.*)', s, re.I)
    if not m: return None
    kind=m.group(1).upper(); rest=m.group(2)
    if kind=='FUNCTION':
        name=rest.split('(')[0]
        # arg types: crude — the text inside the first parentheses with names and defaults removed
        depth=0; j=rest.index('(')
        k=j
        while True:
            if rest[k]=='(': depth+=1
            elif rest[k]==')':
                depth-=1
                if depth==0: break
            k+=1
        args=rest[j+1:k]
        types=[]
        for a in re.split(r',(?![^()]*\))', args):
            a=a.strip()
            if not a: continue
            a=re.sub(r'\s+DEFAULT\s+.*$','',a,flags=re.I)
            parts=a.split()
            types.append(parts[-1] if len(parts)>1 and not parts[0].upper() in ('DOUBLE',) else a)
        return (kind, name, tuple(types))
    if kind=='AGGREGATE':
        return (kind, rest.split(')')[0]+')')
    return (kind, rest.split(' ')[0].split('(')[0])
