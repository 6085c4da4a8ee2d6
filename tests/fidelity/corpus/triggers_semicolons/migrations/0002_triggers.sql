create trigger notes_ai after insert on notes
begin
  insert into audit (what) values ('insert; of ' || new.id || ' -- not a comment');
  update notes set updated = 'x;y' where id = new.id;
end;

CREATE TRIGGER notes_au AFTER UPDATE OF body ON notes FOR EACH ROW WHEN new.body <> old.body BEGIN
  INSERT INTO audit (what) VALUES ('END; update');
END;
