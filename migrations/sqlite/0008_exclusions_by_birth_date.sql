-- Register rows that name someone the club does not know yet are matched on name and birth date
-- (see 0001). The wallet checks every betting player of a batch at once with one query whose
-- terms are OR-ed: with this index each term is an index search, not a scan of the register.
CREATE INDEX exclusions_birth_date ON exclusions (birth_date);
